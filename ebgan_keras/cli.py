"""The `ebgan-keras` command line: train a model and draw samples.

Keras is imported only after the arguments are parsed, so that `--backend`
can choose the Keras backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

MODELS = ("ebgan", "ebgan_pt", "began", "magan")
SAMPLERS = ("none", "truncation", "ddls")


class UsageError(Exception):
    """A user error: printed as one line, exit code 2, no traceback."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `ebgan-keras`, with every command and its help."""
    parser = argparse.ArgumentParser(
        prog="ebgan-keras",
        description="Energy-based GANs for Keras 3 (TensorFlow, JAX, PyTorch).",
        epilog="Example: ebgan-keras train ebgan_pt --data mnist_subset "
        "--epochs 30 --out runs/quickstart",
    )
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: $KERAS_BACKEND, else tensorflow).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a model and write it with a grid of samples",
        description="Train MODEL on DATA with the papers' defaults; the run folder "
        "holds model.keras, history.json, samples.png and a backup that makes "
        "the same command resume after an interruption.",
        epilog="Example: ebgan-keras train ebgan_pt --data mnist_subset "
        "--epochs 30 --out runs/quickstart",
    )
    train.add_argument("model", choices=MODELS, help="which GAN to train")
    train.add_argument(
        "--data",
        default="mnist_subset",
        help="an ek.data.load name: mnist_subset (shipped, offline), mnist, "
        "fashion_mnist, or a TFDS name (default: mnist_subset)",
    )
    train.add_argument("--epochs", type=_positive_int, default=30)
    train.add_argument("--batch-size", type=_positive_int, default=64)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--steps-per-epoch", type=_positive_int, help="limit the steps of each epoch"
    )
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))

    sample = commands.add_parser(
        "sample",
        help="draw samples from a saved model into a PNG grid",
        description="Load a model saved with model.save (a .keras file) and "
        "write a grid of samples, optionally improved by a latent sampler.",
        epilog="Example: ebgan-keras sample runs/quickstart/model.keras "
        "--sampler ddls --num 64 --out samples.png",
    )
    sample.add_argument("model_file", help="a .keras file written by model.save")
    sample.add_argument("--sampler", choices=SAMPLERS, default="none")
    sample.add_argument("--num", type=_positive_int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", default="samples.png", help="PNG grid to write")
    sample.add_argument("--npz", help="also write images and latents to this .npz")
    return parser


def _build_model(name: str, image_shape: tuple, seed: int, epochs: int):
    import ebgan_keras as ek

    generator = ek.networks.ebgan_mlp_generator(
        latent_dim=64, image_shape=image_shape, hidden_units=(512, 512)
    )
    discriminator = ek.networks.ebgan_mlp_discriminator(
        image_shape=image_shape, encoder_units=(512, 256)
    )
    if name == "ebgan":
        return ek.EBGAN(generator, discriminator, seed=seed)
    if name == "ebgan_pt":
        return ek.EBGANPT(generator, discriminator, seed=seed)
    if name == "began":
        return ek.BEGAN(generator, discriminator, seed=seed)
    return ek.MAGAN(
        generator, discriminator, pretrain_epochs=min(2, max(epochs - 1, 1)), seed=seed
    )


def train(args) -> int:
    """Runs `ebgan-keras train`."""
    import keras
    import numpy as np

    import ebgan_keras as ek

    os.makedirs(args.out, exist_ok=True)
    try:
        dataset = ek.data.load(args.data, batch_size=args.batch_size, seed=args.seed)
    except (ValueError, ek.data.DatasetUnavailableError, ek.data.OfflineDataError) as e:
        raise UsageError(f"--data {args.data!r}: {e}") from e
    image_shape = tuple(int(d) for d in dataset.element_spec.shape[1:])
    keras.utils.set_random_seed(args.seed)
    model = _build_model(args.model, image_shape, args.seed, args.epochs)
    # Several steps per compiled call, where the backend allows it and they
    # divide the epoch (Keras runs whole executions).
    per_call = 1 if keras.backend.backend() == "torch" else 10
    if args.steps_per_epoch and args.steps_per_epoch % per_call:
        per_call = 1
    model.compile(steps_per_execution=per_call)
    backup = keras.callbacks.BackupAndRestore(os.path.join(args.out, "backup"))
    history = model.fit(
        dataset,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        callbacks=[backup],
        verbose=args.verbose,
    )
    model.save(os.path.join(args.out, "model.keras"))
    logs = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    with open(os.path.join(args.out, "history.json"), "w") as f:
        json.dump(logs, f, indent=1)
    images = model.generate(64, seed=args.seed)
    ek.plot.grid(images, os.path.join(args.out, "samples.png"))
    print(
        f"Wrote {args.out}/model.keras, history.json and samples.png "
        f"({keras.backend.backend()} backend; final "
        + ", ".join(f"{k}={np.asarray(v[-1]):.4g}" for k, v in sorted(logs.items()))
        + ")"
    )
    return 0


def sample(args) -> int:
    """Runs `ebgan-keras sample`."""
    if not os.path.isfile(args.model_file):
        raise UsageError(f"no such model file. Received: {args.model_file!r}")
    import keras
    import numpy as np

    import ebgan_keras as ek

    try:
        model = keras.saving.load_model(args.model_file)
    except Exception as e:  # noqa: BLE001 - any unreadable file is a user error
        raise UsageError(
            f"cannot load {args.model_file!r} as a Keras model: {e}"
        ) from e
    if not isinstance(model, ek.EnergyGAN):
        raise UsageError(
            f"{args.model_file!r} holds a {type(model).__name__}, not an "
            "ebgan_keras model."
        )
    if args.sampler == "none":
        latents = model.sample_latents(args.num, seed=args.seed)
        images, latents = model.generate(latents), keras.ops.convert_to_numpy(latents)
    else:
        sampler = ek.samplers.get(args.sampler)
        images, latents = sampler.sample(model, args.num, seed=args.seed)
    ek.plot.grid(images, args.out)
    if args.npz:
        np.savez_compressed(args.npz, images=images, latents=latents)
    print(f"Wrote {args.num} samples ({args.sampler}) to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ebgan-keras`; returns the exit code.

    Args:
        argv: list of str. Arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        0 on success, 2 on a user error.
    """
    args = build_parser().parse_args(argv)
    if args.backend:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != args.backend:
            print("ebgan-keras: --backend must be set before Keras is imported.")
            return 2
        os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return {"train": train, "sample": sample}[args.command](args)
    except UsageError as error:
        print(f"ebgan-keras {args.command}: error: {error}", file=sys.stderr)
        return 2

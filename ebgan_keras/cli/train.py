"""`ebgan-keras train`: train a config into a resumable run folder."""

from __future__ import annotations

import os
import sys

from ebgan_keras.cli import options
from ebgan_keras.cli.errors import PeerFailure
from ebgan_keras.cli.errors import UsageError
from ebgan_keras.run.config import builtin_names

LEGACY_CONFIG_KEYS = (
    "data",
    "epochs",
    "batch_size",
    "seed",
    "steps_per_epoch",
    "image_size",
    "learning_rate",
    "model",
    "generator",
    "discriminator",
)

TRAIN_EXAMPLE = """examples:
  ebgan-keras train ebgan_pt --data mnist_subset --epochs 5 --out runs/quickstart
  ebgan-keras train began --data mnist --epochs 20 --out runs/began --backend jax
  ebgan-keras train --config zoo/ebgan_pt_mnist/config.json --out runs/entry
  ebgan-keras train ebgan_pt_mnist --epochs 2 --out runs/e2   (a zoo recipe)
  ebgan-keras train magan --data fashion_mnist --config magan.json --out runs/m

CONFIG is a built-in config (ebgan, ebgan_pt, began, magan, gan, wgan_gp,
loss_sensitive_gan, gls_gan: the papers' settings) or a zoo entry's name.
--config FILE.json is either a whole run config (the form of a zoo entry's
config.json, see ebgan_keras.run.config), used alone, or settings that overlay
CONFIG: any of data, epochs, batch_size, seed, steps_per_epoch, image_size,
learning_rate, and the objects model (e.g. {"margin": 5.0}), generator and
discriminator (arguments of the ek.networks builders, e.g.
{"hidden_units": [512, 512]}). Command-line options win.

Rerun the same command after an interruption (a kill included) to continue
exactly where the last finished epoch ended, or with a larger --epochs to
train further. One process at a time may train in a run folder."""


def add_parser(subparsers) -> None:
    """Adds `train` and its flags to the subparsers of `ebgan-keras`."""
    train = options.subparser(
        subparsers,
        "train",
        "train a model; writes a resumable run folder",
        "Train a config on DATA: a built-in config has the papers' defaults "
        "(fully connected nets for 28x28 EBGAN, EBGAN-PT and MAGAN; BEGAN's "
        "convolutional nets at 32x32). RUN_DIR receives model.keras, "
        "history.json, samples.png (fixed latents), curves.png, "
        "samples/epoch_XXXX.png, run_config.json and, while training, "
        "backup/ (the resume checkpoint, removed once model.keras is written).",
        TRAIN_EXAMPLE,
    )
    train.add_argument(
        "model",
        nargs="?",
        metavar="CONFIG",
        help=f"a built-in config ({', '.join(builtin_names())}) or a zoo entry's "
        "name; optional when --config is a whole run config",
    )
    train.add_argument(
        "--data",
        help="an ek.data.load name: mnist_subset (2,000 MNIST digits shipped with "
        "the package, offline), mnist, fashion_mnist, or a TFDS name "
        "(required unless given in --config)",
    )
    train.add_argument(
        "--epochs", type=options.positive_int, help="epochs to train (default: 25)"
    )
    train.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run folder (created)"
    )
    train.add_argument(
        "--batch-size",
        type=options.positive_int,
        help="images per step (default: 64; BEGAN 32)",
    )
    train.add_argument(
        "--seed", type=options.seed, help="seed of data order and latents (0)"
    )
    train.add_argument(
        "--steps-per-epoch",
        type=options.positive_int,
        help="steps per epoch (default: one pass over the data, at least "
        "100: small data sets are repeated)",
    )
    train.add_argument(
        "--image-size",
        type=options.positive_int,
        help="resize images to this square size (default: 28x28 data as is; BEGAN 32)",
    )
    train.add_argument(
        "--config", metavar="FILE.json", help="JSON file of settings (see below)"
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 silent, 1 progress bar, 2 one line per epoch (default: 1)",
    )
    train.add_argument(
        "--mixed-precision",
        choices=("mixed_float16", "mixed_bfloat16"),
        help="Keras dtype policy of the networks (default: float32); energies, "
        "margins, k and the pulling-away term stay float32",
    )
    _add_run_options(train)


def _add_run_options(train) -> None:
    """Precision and data parallelism."""
    train.add_argument(
        "--distribute",
        choices=options.DISTRIBUTE_MODES,
        default="none",
        help="data parallelism (default: none): mirrored (TensorFlow, the devices "
        "of this process), data-parallel (JAX, the devices of this process), "
        "multi-worker (TensorFlow, processes described by TF_CONFIG), "
        "multi-process (JAX, see --coordinator); --batch-size is the global batch",
    )
    train.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-process: process 0's address and a free port (else "
        "$KERAS_DISTRIBUTION_JOB_ADDRESSES, else JAX's Slurm/Open MPI detection)",
    )
    train.add_argument(
        "--num-processes",
        type=options.positive_int,
        help="multi-process: processes in the run (else "
        "$KERAS_DISTRIBUTION_NUM_PROCESSES)",
    )
    train.add_argument(
        "--process-id",
        type=options.integer,
        help="multi-process: this process's index, 0 the chief (else "
        "$KERAS_DISTRIBUTION_PROCESS_ID)",
    )
    train.add_argument(
        "--collective-timeout",
        type=options.positive_int,
        default=60,
        metavar="SECONDS",
        help="multi-worker / multi-process: the others fail this long after a "
        "process dies, instead of waiting forever (default: 60)",
    )


def _read_config_file(path) -> dict:
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.config import read_json

    if os.path.isdir(path):
        raise UsageError(
            f"--config must be a JSON file, not a folder. Received: {path!r}"
        )
    if os.path.exists(path) and not os.path.isfile(path):
        raise UsageError(
            f"--config must be a regular JSON file. Received: {path!r} (not a "
            "regular file)"
        )
    try:
        return read_json(path, "--config")
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _legacy_overrides(raw: dict, path: str) -> dict:
    """Settings of the previous release's `--config` form, in the schema's form."""
    unknown = sorted(set(raw) - set(LEGACY_CONFIG_KEYS))
    if unknown:
        raise UsageError(
            f"--config: unknown keys {unknown}; allowed: "
            f"{', '.join(LEGACY_CONFIG_KEYS)}, or a whole run config with "
            f"`class` (see ebgan_keras.run.config). Received: {path!r}"
        )
    for key in ("model", "generator", "discriminator"):
        if not isinstance(raw.get(key, {}), dict):
            raise UsageError(
                f"--config: {key!r} must be a JSON object of keyword arguments. "
                f"Received: {key}={raw[key]!r}"
            )
    overrides = {
        "training": {
            key: raw[key] for key in LEGACY_CONFIG_KEYS[:7] if raw.get(key) is not None
        }
    }
    if "model" in raw:
        overrides["model"] = raw["model"]
    for role in ("generator", "discriminator"):
        if role in raw:
            overrides[role] = {"kwargs": raw[role]}
    return overrides


def resolve_train_settings(args) -> dict:
    """The run config of `ebgan-keras train`: options over `--config` over CONFIG.

    Args:
        args: `argparse.Namespace` of `ebgan-keras train`.

    Returns:
        A validated run config (see `ebgan_keras.run.config`).

    Example:

    >>> args = build_parser().parse_args(
    ...     ["train", "began", "--data", "mnist", "--out", "runs/b"])
    >>> resolve_train_settings(args)["training"]["image_size"]
    32
    """
    from ebgan_keras.run import config as schema
    from ebgan_keras.run import training

    raw = _read_config_file(args.config) if args.config else None
    whole = raw is not None and "class" in raw
    try:
        if whole:
            if args.model is not None:
                raise UsageError(
                    f"--config {args.config!r} is a whole run config: give it "
                    f"without CONFIG. Received: CONFIG {args.model!r}"
                )
            base = schema.validate(raw, f"--config {args.config!r}")
        elif args.model is None:
            raise UsageError(
                f"train needs CONFIG ({', '.join(builtin_names())} or a zoo entry) "
                "or --config with a whole run config. Received: neither"
            )
        else:
            from ebgan_keras.zoo.entries import find_config

            base = find_config(args.model)
            if raw is not None:
                base = schema.validate(
                    schema.merge(base, _legacy_overrides(raw, args.config)),
                    f"--config {args.config!r}",
                )
        settings = training.resolve_config(
            base,
            epochs=args.epochs,
            steps_per_epoch=args.steps_per_epoch,
            data=args.data,
            seed=args.seed,
            batch_size=args.batch_size,
            image_size=args.image_size,
        )
    except schema.ConfigError as error:
        raise UsageError(str(error)) from None
    if not settings["training"]["data"]:
        raise UsageError(
            "--data is required (e.g. --data mnist_subset). Received: no --data"
        )
    return settings


def _check_batch_size(settings: dict) -> None:
    """Refuses a batch the model's losses are not defined for (EBGAN-PT's
    pulling-away term compares pairs)."""
    from ebgan_keras.run.builder import model_classes

    cls = model_classes().get(settings["class"])
    batch_size = settings["training"]["batch_size"]
    if cls is not None and batch_size < cls.min_batch_size:
        raise UsageError(
            f"--batch-size: {cls.__name__} needs batches of at least "
            f"{cls.min_batch_size}: {cls.min_batch_reason}. Received: "
            f"--batch-size {batch_size}"
        )


def _setup_distribute(args):
    """The cluster of `train --distribute`, set up before any model exists."""
    from ebgan_keras.run import distribute

    mode = args.distribute
    jax_flags = {
        "--coordinator": args.coordinator,
        "--num-processes": args.num_processes,
        "--process-id": args.process_id,
    }
    given = [flag for flag, value in jax_flags.items() if value is not None]
    if given and mode != "multi-process":
        raise UsageError(
            f"{', '.join(given)} only apply to --distribute multi-process. "
            f"Received: --distribute {mode}"
        )
    try:
        return distribute.setup(
            mode,
            coordinator=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            timeout_s=args.collective_timeout,
        )
    except distribute.DistributeError as error:
        raise UsageError(f"--distribute {mode}: {error}") from None


def run(args) -> int:
    """Runs `ebgan-keras train`; see `ebgan-keras train --help`."""
    settings = resolve_train_settings(args)
    _check_batch_size(settings)
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out must be a folder. Received: {out!r} (a file)")
    cluster = _setup_distribute(args)
    from ebgan_keras import files
    from ebgan_keras import plot
    from ebgan_keras.run import distribute
    from ebgan_keras.run import training

    announced = []

    def announce(line: str) -> None:
        announced.append(line)
        print(line, flush=True)

    try:
        model = training.train(
            settings,
            out,
            verbose=args.verbose,
            sample_grids=True,
            announce=announce,
            cluster=cluster,
            mixed_precision=args.mixed_precision,
        )
    except Exception as error:
        if not distribute.peer_failure(error):
            raise
        first_line = str(error).strip().splitlines()[0][:300]
        raise PeerFailure(
            f"a process of the {cluster.mode} run stopped or cannot be reached "
            f"({type(error).__name__}: {first_line}); rerun every process with "
            "the same command to resume from the last checkpoint"
        ) from None
    if announced and announced[-1].startswith("Nothing was trained"):
        return 0  # the run's files stay as they were
    seed = settings["training"]["seed"]
    latents = model.sample_latents(64, seed=seed)
    # Every process of a distributed run generates (on JAX a computation on
    # global arrays needs them all); the chief writes.
    images = model.generate(latents)
    if not cluster.is_chief:
        print(
            f"Process {cluster.process_index} of {cluster.num_processes} done; the "
            f"chief (process 0) wrote the run folder {out}"
        )
        return 0
    files.atomic_write(
        os.path.join(out, "samples.png"), lambda path: plot.grid(images, path)
    )
    written = ["model.keras", "history.json", "samples.png"]
    history = files.read_json(os.path.join(out, training.HISTORY_FILE), {})
    try:
        files.atomic_write(
            os.path.join(out, "curves.png"), lambda path: plot.history(history, path)
        )
        written.append("curves.png")
    except ImportError as error:
        print(f"(no curves.png: {error})", file=sys.stderr)
    final = ", ".join(
        f"{name}={values[-1]:.4g}"
        for name, values in sorted(history.items())
        if values and values[-1] is not None
    )
    print(f"Wrote {', '.join(written)} to {out} ({final})")
    return 0

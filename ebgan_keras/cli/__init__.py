"""The `ebgan-keras` command line: train, sample, evaluate, zoo.

Commands:

- `ebgan-keras train CONFIG --data DATA --epochs N --out RUN_DIR`: train a
  built-in config (`ebgan_keras/configs/*.json`), a zoo entry's
  recipe, or any config file (`--config FILE.json`) through the one training
  driver (`ebgan_keras.run.training`); the run folder holds `model.keras`,
  `history.json`, `samples.png`, `curves.png`, per-epoch grids in `samples/`
  and, while training, the checkpoint that makes the same command resume.
- `ebgan-keras sample FILE_OR_ENTRY --sampler ddls --num 64 --out samples.png`
  (`--animate chains.gif` for DDLS's chains).
- `ebgan-keras eval FILE_OR_ENTRY --metrics fid,kid --num 10000 --reference mnist`
  (`--sampler NAME` to score a latent sampler's samples).
- `ebgan-keras sweep GRID.json --out SWEEP_DIR`: a hyperparameter sweep on
  Ray Tune (`ebgan_keras.run.sweeps`), every trial a run of the one driver.
- `ebgan-keras zoo list|describe NAME|build NAME`: delegates to `ebgan_keras.zoo`.

Start-up: this module imports nothing heavy. The arguments are parsed first;
then `KERAS_BACKEND` (from `--backend`) and TensorFlow's log level are set,
and only then is Keras imported, so `--backend` needs no second process and
no TensorFlow C++ log line reaches the user (`ebgan-keras --verbose ...`
shows them, and full tracebacks).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from ebgan_keras.run.config import builtin_names

#: `--sampler` choices and the `ek.samplers` id of each.
SAMPLER_IDS = {
    "none": "prior",
    "truncation": "truncation",
    "ddls": "ddls",
    "rejection": "rejection",
    "mh": "metropolis_hastings",
}
SAMPLERS = tuple(SAMPLER_IDS)
#: Samplers that fit the energy's calibration on real images.
CALIBRATED_SAMPLERS = ("rejection", "mh")
NUM_CALIBRATION = 2000
#: Chains an animation shows at most (a grid of 8 x 8).
MAX_ANIMATED_CHAINS = 64
BACKENDS = ("tensorflow", "jax", "torch")
#: `train --distribute` choices (`ebgan_keras.run.distribute.MODES`, not imported
#: here: it would cost start-up time).
DISTRIBUTE_MODES = (
    "none",
    "mirrored",
    "data-parallel",
    "multi-worker",
    "multi-process",
)
METRICS = ("fid", "kid", "is", "precision_recall")
FEATURES = ("auto", "mnist_classifier", "fashion_mnist_classifier", "inception_v3")

#: Keys of a `--config` file of the previous release's form: settings that
#: overlay the chosen config (`generator`/`discriminator` hold builder kwargs).
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

EXPORT_EXAMPLE = """examples:
  ebgan-keras export ebgan_pt_mnist exported/ebgan_pt_ddls --sampler ddls
  ebgan-keras export runs/quickstart/model.keras exported/q --sampler truncation \\
      --threshold 0.7

Then, with TensorFlow alone:
  served = tf.saved_model.load("exported/ebgan_pt_ddls")
  out = served.sample(tf.constant(16), tf.constant(0, tf.int64))
  out["images"], out["latents"]"""

SWEEP_EXAMPLE = """examples:
  ebgan-keras sweep benchmarks/grids/ebgan_lr_margin.json --out runs/sweep
  ebgan-keras sweep grid.json --out runs/sweep --num-samples 8 --seed 1
  ebgan-keras sweep grid.json --out runs/sweep --address ray://head:10001

GRID.json is a JSON object: "base" (a config name, path or object),
"overrides" (nested settings for every trial, e.g. {"training": {"data":
"mnist", "epochs": 1, "steps_per_epoch": 300}}), "grid" ({dotted config path:
[values]}, e.g. {"training.learning_rate": [0.001, 0.0001], "model.margin":
[5.0, 10.0]}) and/or "trials" (a list of {dotted path: value}), and optional
"num_samples" (a seeded random subset of the grid), "seed" and "evaluation"
({"num_samples": 5000, "metrics": ["fid", "is"], ...}). Command-line options
win. Every trial's config is checked before any trial starts.

SWEEP_DIR receives sweep.json, trials/NNNN/ (each trial's run folder and
row.json), ray/ (Ray Tune's state) and results.jsonl (one row per trial).
Rerun the same command to resume: finished trials are never re-run.
Needs Ray Tune: pip install "ebgan-keras[sweep]"."""

SAMPLE_EXAMPLE = """examples:
  ebgan-keras sample runs/quickstart/model.keras --out samples.png
  ebgan-keras sample runs/quickstart/model.keras --sampler ddls --num 64 \\
      --out ddls.png --npz ddls.npz --seed 1
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --out ddls.png  (a zoo entry)
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --ddls-temperature calibrated \\
      --animate chains.gif
  ebgan-keras sample ebgan_pt_mnist --sampler rejection --out drs.png

--npz writes `images` (N, H, W, C) in [-1, 1] and their `latents` (N, D).
A zoo entry samples with the settings of its card (config.json's
evaluation.samplers; for DDLS the step size its card chose). rejection, mh
and --ddls-temperature calibrated fit a logistic calibration of the energy
(ek.samplers.EnergyCalibration) on the first --num-calibration (2,000)
images of the --calibration-split (test) split of --reference: real images
the model never trained on."""

EVAL_EXAMPLE = """examples:
  ebgan-keras eval runs/quickstart/model.keras --metrics fid,kid --num 10000 \\
      --reference mnist
  ebgan-keras eval runs/f/model.keras --reference fashion_mnist --json f.json
  ebgan-keras eval ebgan_pt_mnist --num 2000 --reference mnist_subset  (zoo entry)

  ebgan-keras eval ebgan_pt_mnist --sampler ddls --num 2000  (DDLS's samples)

--features auto picks mnist_classifier for mnist / mnist_subset references,
fashion_mnist_classifier for fashion_mnist (both offline, 28x28 grey) and
inception_v3 otherwise (needs its weights): ek.metrics.auto_features.
--sampler scores that sampler's samples (a zoo entry's with its card's
settings); rejection, mh and --ddls-temperature calibrated calibrate the
energy on the first --num-calibration (2,000) images of the
--calibration-split (test) split of the reference data set."""

ZOO_EXAMPLE = """examples:
  ebgan-keras zoo list
  ebgan-keras zoo describe ebgan_pt_mnist
  ebgan-keras zoo build ebgan_pt_mnist --out my_zoo/ebgan_pt_mnist
  ebgan-keras zoo build began_celeba --data /path/to/img_align_celeba
  ebgan-keras zoo build began_celeba --data-dir /path/to/tensorflow_datasets
  ebgan-keras zoo build ebgan_pt_mnist --out /tmp/e --epochs 1 \\
      --steps-per-epoch 20 --data mnist_subset --num-samples 500 \\
      --reference mnist_subset          (a shrunk smoke run)
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --out ddls.png
  ebgan-keras zoo build gan_mnist --evaluate-only --out zoo_builds/gan_mnist
                                        (re-measure a trained entry)
  ebgan-keras zoo build gan_mnist --card-only --out zoo_builds/gan_mnist
                                        (its card after its notes changed)

Rerun the same build command after an interruption to resume it."""

MAIN_EXAMPLE = """examples:
  ebgan-keras train ebgan_pt --data mnist_subset --epochs 5 --out runs/quickstart
  ebgan-keras sample runs/quickstart/model.keras --sampler ddls --out ddls.png
  ebgan-keras eval runs/quickstart/model.keras --metrics fid,kid --num 2000 \\
      --reference mnist
  ebgan-keras train --help

`python -m ebgan_keras` runs the same command line."""


class UsageError(Exception):
    """A user error: printed as one line, exit code 2, no traceback."""


class PeerFailure(RuntimeError):
    """Another process of a distributed run was lost: one line, exit code 3."""


# ----------------------------------------------------------------------
# Argument parsing
# ----------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _metrics(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(METRICS)}, got {text!r}"
        )
    return names


def _ddls_temperature(text: str):
    if text == "calibrated":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(
            f"expected 'calibrated' or a positive number, got {text!r}"
        )
    return value


def _add_sampler_options(parser: argparse.ArgumentParser, command: str) -> None:
    """`--sampler` and the options of the samplers, for `sample` and `eval`."""
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="none",
        help="none (plain sampling from the prior), truncation, ddls (Langevin "
        "in latent space), rejection (discriminator rejection sampling) or mh "
        "(MH-GAN); a zoo entry's settings are its card's (default: none)",
    )
    parser.add_argument(
        "--ddls-temperature",
        type=_ddls_temperature,
        metavar="calibrated|T",
        help="with --sampler ddls: the temperature T dividing the energy, a "
        "positive number, or 'calibrated': 1 / slope of the energy's logistic "
        "calibration on real images, U(z) = -log p0(z) - d(G(z)) (default: a "
        "zoo entry's card, else 1.0)",
    )
    if command == "sample":
        parser.add_argument(
            "--reference",
            help="data set (an ek.data.load name) of the real images that "
            "calibrate the energy (default: a zoo entry's own reference, else "
            "mnist)",
        )
    parser.add_argument(
        "--calibration-split",
        default="test",
        help="split of the reference data set whose first --num-calibration "
        "images calibrate the energy for rejection, mh and --ddls-temperature "
        "calibrated (default: test, images the model never trained on; zoo "
        "cards calibrated on 2,000 training images)",
    )
    parser.add_argument(
        "--num-calibration",
        type=_positive_int,
        default=NUM_CALIBRATION,
        help=f"real images in the calibration, at most the split's "
        f"(default: {NUM_CALIBRATION})",
    )


def _add_backend(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="Keras backend (default: $KERAS_BACKEND, else Keras's own default)",
    )


def _subparser(commands, name: str, help_text: str, description: str, epilog: str):
    parser = commands.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend(parser, argparse.SUPPRESS)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Builds the argument parser of `ebgan-keras`, with every command's help.

    Returns:
        An `argparse.ArgumentParser`.

    Example:

    >>> args = build_parser().parse_args(["sample", "model.keras"])
    >>> args.command, args.sampler, args.num
    ('sample', 'none', 64)
    """
    parser = argparse.ArgumentParser(
        prog="ebgan-keras",
        description="Energy-based GANs (EBGAN, EBGAN-PT, BEGAN, MAGAN) for Keras 3 "
        "on TensorFlow, JAX and PyTorch: train, sample, evaluate.",
        epilog=MAIN_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_backend(parser, None)
    parser.add_argument(
        "--verbose",
        dest="debug",
        action="store_true",
        help="show full tracebacks and TensorFlow's log lines",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = _subparser(
        commands,
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
        "--epochs", type=_positive_int, help="epochs to train (default: 25)"
    )
    train.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run folder (created)"
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int,
        help="images per step (default: 64; BEGAN 32)",
    )
    train.add_argument("--seed", type=_int, help="seed of data order and latents (0)")
    train.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="steps per epoch (default: one pass over the data, at least "
        "100: small data sets are repeated)",
    )
    train.add_argument(
        "--image-size",
        type=_positive_int,
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
    train.add_argument(
        "--distribute",
        choices=DISTRIBUTE_MODES,
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
        type=_positive_int,
        help="multi-process: processes in the run (else "
        "$KERAS_DISTRIBUTION_NUM_PROCESSES)",
    )
    train.add_argument(
        "--process-id",
        type=_int,
        help="multi-process: this process's index, 0 the chief (else "
        "$KERAS_DISTRIBUTION_PROCESS_ID)",
    )
    train.add_argument(
        "--collective-timeout",
        type=_positive_int,
        default=60,
        metavar="SECONDS",
        help="multi-worker / multi-process: the others fail this long after a "
        "process dies, instead of waiting forever (default: 60)",
    )

    sample = _subparser(
        commands,
        "sample",
        "draw samples from a saved model into a PNG grid",
        "Load a model saved by `ebgan-keras train` or `model.save` (a .keras "
        "file) and write a grid of samples, optionally improved by a latent "
        "sampler (ek.samplers). A name that is not a file is looked up in the "
        "model zoo (`ebgan-keras zoo list`).",
        SAMPLE_EXAMPLE,
    )
    sample.add_argument(
        "model_file",
        metavar="FILE_OR_ENTRY",
        help="a .keras model file, or the name of a zoo entry",
    )
    _add_sampler_options(sample, "sample")
    sample.add_argument(
        "--num", type=_positive_int, default=64, help="samples (default: 64)"
    )
    sample.add_argument("--seed", type=_int, default=0, help="seed (default: 0)")
    sample.add_argument(
        "--out", default="samples.png", help="PNG grid to write (default: samples.png)"
    )
    sample.add_argument("--npz", help="also write images and latents to this .npz")
    sample.add_argument(
        "--animate",
        metavar="FILE.gif",
        help="with --sampler ddls: also write an animated GIF of the chains "
        f"(the first {MAX_ANIMATED_CHAINS} samples, one grid cell per chain) "
        "moving through latent space",
    )
    sample.add_argument(
        "--animate-every",
        type=_positive_int,
        metavar="K",
        help="with --animate: one frame every K steps, and the last "
        "(default: about 20 frames, K = max(1, steps // 20))",
    )

    evaluate = _subparser(
        commands,
        "eval",
        "measure FID/KID/IS/precision-recall of a saved model",
        "Generate --num images from a saved model (or a zoo entry) and compare "
        "them with a reference data set; prints each value with its protocol "
        "(features, sample counts, reference split, seed).",
        EVAL_EXAMPLE,
    )
    evaluate.add_argument(
        "model_file",
        metavar="FILE_OR_ENTRY",
        help="a .keras model file, or the name of a zoo entry",
    )
    evaluate.add_argument(
        "--metrics",
        type=_metrics,
        default=("fid", "kid"),
        help=f"comma-separated, of {', '.join(METRICS)} (default: fid,kid)",
    )
    evaluate.add_argument(
        "--num",
        type=_positive_int,
        default=10000,
        help="generated images (default: 10000)",
    )
    evaluate.add_argument(
        "--reference",
        help="reference data set name for ek.data.load (default: a zoo entry's "
        "own reference, else mnist)",
    )
    evaluate.add_argument(
        "--reference-split", default="test", help="reference split (default: test)"
    )
    evaluate.add_argument(
        "--num-reference",
        type=_positive_int,
        help="reference images used (default: the whole split)",
    )
    evaluate.add_argument(
        "--features",
        choices=FEATURES,
        default="auto",
        help="feature extractor (default: auto)",
    )
    evaluate.add_argument("--seed", type=_int, default=0, help="seed (default: 0)")
    evaluate.add_argument("--json", help="also write the results to this JSON file")
    _add_sampler_options(evaluate, "eval")

    export = _subparser(
        commands,
        "export",
        "write a TensorFlow SavedModel of a model and its sampler",
        "Export a saved model (or a zoo entry) as a TensorFlow SavedModel with "
        "the signatures generate(z), energy(images) and sample(num_samples, "
        "seed), the sampler running inside the graph (ek.export). Serve it with "
        "TensorFlow alone: tf.saved_model.load(PATH). Needs TensorFlow; a model "
        "trained on JAX or PyTorch is exported through a TensorFlow subprocess. "
        "For a zoo entry the sampler's settings default to those of its card.",
        EXPORT_EXAMPLE,
    )
    export.add_argument(
        "model_file",
        metavar="FILE_OR_ENTRY",
        help="a .keras model file, or the name of a zoo entry",
    )
    export.add_argument("path", metavar="PATH", help="SavedModel folder to create")
    export.add_argument(
        "--sampler",
        choices=("none", "truncation", "ddls"),
        default="ddls",
        help="the sampler of the `sample` signature (default: ddls; rejection "
        "and Metropolis-Hastings have no fixed-size in-graph form)",
    )
    for flag, kind, help_text in (
        ("--threshold", float, "truncation: threshold (default: 1.0)"),
        ("--step-size", float, "ddls: step size (default: the card's, else 0.01)"),
        ("--num-steps", _positive_int, "ddls: steps (default: the card's, else 100)"),
        ("--temperature", float, "ddls: temperature (default: the card's, else 1)"),
        ("--noise-scale", float, "ddls: noise scale (default: the card's, else 1)"),
    ):
        export.add_argument(flag, type=kind, help=help_text)

    sweep = _subparser(
        commands,
        "sweep",
        "a hyperparameter sweep on Ray Tune; resumable",
        "Train one run per point of a grid over any field of the run config "
        "(or a seeded random subset of it) on Ray Tune, each trial a normal "
        "resumable run folder, and score each trained model (FID and IS on "
        "the offline classifier of MNIST/Fashion-MNIST by default).",
        SWEEP_EXAMPLE,
    )
    sweep.add_argument("grid_file", metavar="GRID.json", help="the grid file")
    sweep.add_argument(
        "--out", required=True, metavar="SWEEP_DIR", help="sweep folder (created)"
    )
    sweep.add_argument(
        "--num-samples",
        type=_positive_int,
        help="run a seeded random subset of this many grid points",
    )
    sweep.add_argument("--seed", type=int, help="seed of the subset and the trials")
    sweep.add_argument(
        "--steps",
        type=_positive_int,
        help="training steps per trial (sets training.epochs=1 and "
        "training.steps_per_epoch)",
    )
    sweep.add_argument(
        "--eval-samples",
        type=_positive_int,
        help="generated images scored per trial (default: 5000)",
    )
    sweep.add_argument(
        "--no-eval", action="store_true", help="train only; no scores per trial"
    )
    sweep.add_argument(
        "--address", help="a Ray cluster's address (default: a local Ray)"
    )
    sweep.add_argument(
        "--num-cpus",
        type=_positive_int,
        help="CPUs of the local Ray (default: all of this machine's)",
    )
    sweep.add_argument(
        "--cpus-per-trial",
        type=_positive_int,
        default=1,
        help="CPUs (and threads) per trial (default: 1)",
    )
    sweep.add_argument(
        "--reuse-workers",
        action="store_true",
        help="run trials in warm worker processes (faster for short trials; "
        "scores may then differ in the last digits from a fresh process's)",
    )
    sweep.add_argument(
        "--delete-models",
        action="store_true",
        help="delete each trial's model.keras once its row is written",
    )

    zoo = _subparser(
        commands,
        "zoo",
        "pretrained models: list, describe, build",
        "List the entries of the model zoo (ebgan_keras.zoo), print an entry's "
        "model card, or build an entry from its recipe: data, training, "
        "evaluation and model card, resumable from --run-dir. `sample` and "
        "`eval` take an entry's name in place of a file and load its trained "
        "weights (checked by sha256).",
        ZOO_EXAMPLE,
    )
    zoo.add_argument(
        "action",
        choices=("list", "describe", "build"),
        help="list the entries, describe NAME, or build NAME",
    )
    zoo.add_argument("name", nargs="?", metavar="NAME", help="zoo entry")
    zoo.add_argument(
        "--out",
        metavar="ENTRY_DIR",
        help="build: the entry folder to write (default: zoo_builds/NAME)",
    )
    zoo.add_argument(
        "--run-dir",
        metavar="RUN_DIR",
        help="build: checkpoints and logs; rerun to resume (default: OUT/run, "
        "so that a build writes only under its --out)",
    )
    zoo.add_argument(
        "--epochs", type=_positive_int, help="build: override the recipe's epochs"
    )
    zoo.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="build: override the steps per epoch (one pass over the data)",
    )
    zoo.add_argument(
        "--data",
        help="build: override the training data set: a name for ek.data.load or "
        "the folder of the images (e.g. CelebA's img_align_celeba); the "
        "reference follows it when the recipe scores against its training data",
    )
    zoo.add_argument(
        "--data-dir",
        metavar="TFDS_DIR",
        help="build: the TFDS data folder where the data is prepared (default: "
        "$TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    zoo.add_argument(
        "--num-samples",
        type=_positive_int,
        help="build: generated images per metric (default: the recipe's 10000)",
    )
    zoo.add_argument("--reference", help="build: override the reference data set")
    zoo.add_argument(
        "--reference-split",
        help="build: override the reference split (e.g. 'train[-10000:]' for "
        "an image folder without CelebA's partition file)",
    )
    zoo.add_argument(
        "--evaluate-only",
        action="store_true",
        help="build: no training; re-measure the trained entry NAME with its "
        "recipe's evaluation (its weights, checked by sha256) and write a new "
        "card (--out may be the entry's own folder)",
    )
    zoo.add_argument(
        "--card-only",
        action="store_true",
        help="build: no training, no measuring; rewrite the trained entry "
        "NAME's card after its config's text (notes, summary, paper, dataset, "
        "licence) changed, from the numbers it has (anything else changed is "
        "refused)",
    )
    zoo.add_argument(
        "--json", action="store_true", help="describe: print the card as JSON"
    )
    return parser


# ----------------------------------------------------------------------
# train
# ----------------------------------------------------------------------
def _read_config_file(path) -> dict:
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.config import read_json

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
            base = schema.load_config(args.model)
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


def train(args) -> int:
    """Runs `ebgan-keras train`; see `ebgan-keras train --help`."""
    settings = resolve_train_settings(args)
    out = args.out
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out must be a folder. Received: {out!r} (a file)")
    cluster = _setup_distribute(args)
    from ebgan_keras import files
    from ebgan_keras import plot
    from ebgan_keras.run import distribute
    from ebgan_keras.run import training

    try:
        model = training.train(
            settings,
            out,
            verbose=args.verbose,
            sample_grids=True,
            announce=lambda line: print(line, flush=True),
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


# ----------------------------------------------------------------------
# sample and eval
# ----------------------------------------------------------------------
ZOO_FUNCTIONS = ("list_entries", "describe", "build", "load")


def _zoo_module(entry: str | None = None):
    """Imports `ebgan_keras.zoo` lazily; a clear user error if it is missing."""
    try:
        zoo_module = importlib.import_module("ebgan_keras.zoo")
    except ImportError as error:
        what = f"the zoo entry {entry!r}" if entry else "the model zoo"
        raise UsageError(
            f"{what} is not available in this install: the module "
            f"ebgan_keras.zoo cannot be imported ({error}). Pass a .keras file "
            "written by `ebgan-keras train` or `model.save` instead."
        ) from None
    missing = [name for name in ZOO_FUNCTIONS if not hasattr(zoo_module, name)]
    if missing:
        raise UsageError(
            "the model zoo of this install is incomplete: ebgan_keras.zoo lacks "
            f"{', '.join(missing)}."
        )
    return zoo_module


def _zoo_call(function, name: str, what: str):
    """Calls a zoo function; errors about the entry become user errors."""
    try:
        return function(name)
    except (KeyError, ValueError, TypeError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise UsageError(f"cannot {what} zoo entry {name!r}: {message}") from None


def _check_energy_gan(model, source: str):
    from ebgan_keras.run.builder import model_classes

    classes = model_classes()
    if not isinstance(model, tuple(classes.values())):
        raise UsageError(
            f"{source} holds a {type(model).__name__}, not an ebgan_keras model "
            f"({', '.join(sorted(classes))})."
        )
    return model


def _load_model(entry: str):
    """A model from a `.keras` file, or a zoo entry's (by name or folder)."""
    is_folder = os.path.isfile(os.path.join(entry, "metadata.json"))
    if not os.path.isfile(entry):
        if not is_folder and (
            entry.endswith(".keras") or os.sep in entry or "/" in entry
        ):
            raise UsageError(
                f"no such model file or zoo entry folder. Received: {entry!r}"
            )
        zoo_module = _zoo_module(entry)
        model = _zoo_call(zoo_module.load, entry, "load")
        return _check_energy_gan(model, f"zoo entry {entry!r}")
    import keras

    import ebgan_keras.models  # noqa: F401 - registers the model classes

    try:
        model = keras.saving.load_model(entry)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user error
        raise UsageError(f"cannot load {entry!r} as a Keras model: {error}") from None
    return _check_energy_gan(model, repr(entry))


def _check_output_files(*paths) -> None:
    """Fails at once, naming the folder, where an output file cannot be written."""
    from ebgan_keras import files

    for path in paths:
        if path:
            files.check_writable(os.path.dirname(os.path.abspath(path)))


def _check_sampler_options(args) -> None:
    """Fails at once, before any loading, on sampler options that do not fit."""
    if args.sampler != "ddls":
        given = [
            flag
            for flag, value in (
                ("--ddls-temperature", args.ddls_temperature),
                ("--animate", getattr(args, "animate", None)),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"{given[0]} is only for --sampler ddls. Received: --sampler "
                f"{args.sampler}"
            )
    animate = getattr(args, "animate", None)
    if animate is not None and not animate.lower().endswith(".gif"):
        raise UsageError(f"--animate: expected a .gif file. Received: {animate!r}")
    every = getattr(args, "animate_every", None)
    if every is not None and animate is None:
        raise UsageError(
            f"--animate-every needs --animate FILE.gif. Received: --animate-every "
            f"{every}"
        )


def _default_reference(model) -> str:
    """A zoo entry's own reference data set, else mnist."""
    entry = getattr(model, "zoo_entry", None)
    if entry is None:
        return "mnist"
    recipe = _zoo_module(entry).describe(entry)["recipe"]
    return recipe["evaluation"]["reference"]


def _load_real(model, name: str, split: str, option: str):
    """Real images of a data set, at the model's image size, as a dataset."""
    import ebgan_keras as ek

    square = model.image_shape[0] == model.image_shape[1]
    try:
        return ek.data.load(
            name,
            split=split,
            batch_size=256,
            shuffle=False,
            drop_remainder=False,
            image_size=model.image_shape[0] if square else None,
            channels=model.image_shape[2],
        )
    except (
        ValueError,
        TypeError,
        ek.data.DatasetUnavailableError,
        ek.data.OfflineDataError,
    ) as error:
        raise UsageError(f"{option} {name!r}: {error}") from None


def _calibration_images(model, args, reference: str):
    """The first --num-calibration images of --calibration-split."""
    import numpy as np

    dataset = _load_real(model, reference, args.calibration_split, "--reference")
    batches, count = [], 0
    for batch in dataset:
        batches.append(np.asarray(batch))
        count += len(batches[-1])
        if count >= args.num_calibration:
            break
    if count < 2:
        raise UsageError(
            f"--calibration-split {args.calibration_split!r}: the calibration "
            f"needs at least 2 real images of {reference!r}. Received: {count}"
        )
    return np.concatenate(batches, axis=0)[: args.num_calibration]


def _card_settings(model, sampler_id: str) -> dict:
    """A zoo entry's sampler settings: its recipe's, DDLS's chosen step size."""
    entry = getattr(model, "zoo_entry", None)
    if entry is None:
        return {}
    description = _zoo_module(entry).describe(entry)
    evaluation = description.get("recipe", {}).get("evaluation", {})
    settings = dict(evaluation.get("samplers", {}).get(sampler_id, {}))
    measured = description.get("metrics", {}).get(sampler_id, {}).get("sampler", {})
    if sampler_id == "ddls":
        # The card's sweep chose them.
        for name in ("step_size", "num_steps", "temperature_scale"):
            if name in measured:
                settings[name] = measured[name]
        if settings.get("temperature") == "calibrated" and measured.get("calibration"):
            # The calibration the card fitted (its temperature is 1 / slope).
            settings["card_calibration"] = measured["calibration"]
    return settings


def _compile_options(model) -> dict:
    try:
        from ebgan_keras.zoo.stages import compile_options
    except ImportError:
        return {}
    return compile_options(model)


def _make_sampler(args, model, reference: str | None):
    """The sampler of `--sampler`, calibrated where it needs it.

    Args:
        args: the parsed arguments.
        model: the loaded model.
        reference: str. The data set of the calibration images; None for
            the default (`_default_reference`).

    Returns:
        `(sampler, note)`: an `ek.samplers` sampler (None for `none`) and
        the lines that say its settings and what was calibrated on what.
    """
    if args.sampler == "none":
        return None, ""
    try:
        from ebgan_keras import samplers
    except ImportError as error:
        raise UsageError(
            f"--sampler {args.sampler} needs ebgan_keras.samplers, which this "
            f"installation lacks ({error}). Use --sampler none."
        ) from None
    sampler_id = SAMPLER_IDS[args.sampler]
    settings = _card_settings(model, sampler_id)
    settings.pop("seed", None)
    calibrated = args.sampler in CALIBRATED_SAMPLERS
    card_calibration = settings.pop("card_calibration", None)
    if args.sampler == "ddls" and card_calibration and args.ddls_temperature is None:
        settings.pop("temperature")
        settings.update(_compile_options(model))
        sampler = samplers.DDLS.from_calibration(
            card_calibration, seed=args.seed, **settings
        )
        note = (
            f"The card's energy calibration: slope "
            f"{sampler.calibration.slope:.4g}, DDLS temperature "
            f"{sampler.temperature:.4g} (--ddls-temperature calibrated refits it)"
        )
        return sampler, note + "\n" + _settings_line(sampler)
    if args.sampler == "ddls":
        settings.update(_compile_options(model))
        recipe_calibrated = settings.get("temperature") == "calibrated"
        if args.ddls_temperature == "calibrated" or (
            args.ddls_temperature is None and recipe_calibrated
        ):
            settings.pop("temperature", None)
            calibrated = True
        elif args.ddls_temperature is not None:
            settings["temperature"] = args.ddls_temperature
    if not calibrated:
        sampler = samplers.get(
            {"class_name": sampler_id, "config": {**settings, "seed": args.seed}}
        )
        return sampler, _settings_line(sampler)
    reference = reference or _default_reference(model)
    real = _calibration_images(model, args, reference)
    classes = {
        "ddls": samplers.DDLS,
        "rejection": samplers.RejectionSampler,
        "mh": samplers.MetropolisHastings,
    }
    try:
        sampler = classes[args.sampler].calibrate(
            model, real, seed=args.seed, **settings
        )
    except ValueError as error:
        flag = (
            "--ddls-temperature calibrated"
            if args.sampler == "ddls"
            else f"--sampler {args.sampler}"
        )
        raise UsageError(f"{flag}: {error}") from None
    note = (
        f"Calibrated the energy on {len(real)} {reference}/"
        f"{args.calibration_split} images: slope {sampler.calibration.slope:.4g}"
    )
    if args.sampler == "ddls":
        note += f", DDLS temperature {sampler.temperature:.4g}"
    return sampler, note + "\n" + _settings_line(sampler)


def _settings_line(sampler) -> str:
    """`Sampler NAME: key=value, ...`, the settings that shape the samples."""
    hidden = ("seed", "batch_size", "jit_compile", "record_energy", "calibration")
    config = sampler.get_config()
    shown = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in config.items()
        if key not in hidden and value is not None
    )
    return f"Sampler {sampler.name}: {shown}"


def _draw(args, model, sampler):
    """`(images, latents)` of `--num` samples, as numpy.

    The sampler was made with `seed=--seed` and draws the first call of its
    seed stream (after its calibration, if any), as the zoo's evaluation
    stage does: so `eval ENTRY --sampler NAME` reproduces the card's row.
    """
    if sampler is None:
        from ebgan_keras import samplers

        sampler = samplers.get({"class_name": "prior", "config": {"seed": args.seed}})
    return sampler.sample(model, args.num)


def sample(args) -> int:
    """Runs `ebgan-keras sample`; see `ebgan-keras sample --help`."""
    _check_sampler_options(args)
    _check_output_files(args.out, args.npz, args.animate)
    model = _load_model(args.model_file)
    import numpy as np

    from ebgan_keras import files
    from ebgan_keras import plot

    sampler, note = _make_sampler(args, model, args.reference)
    if note:
        print(note)
    if args.animate:
        sampler.record_every = args.animate_every or max(1, sampler.num_steps // 20)
    images, latents = _draw(args, model, sampler)
    files.atomic_write(args.out, lambda path: plot.grid(images, path))
    written = [args.out]
    if args.npz:
        arrays = {"images": np.asarray(images), "latents": np.asarray(latents)}
        files.atomic_write(args.npz, lambda path: np.savez_compressed(path, **arrays))
        written.append(args.npz)
    if args.animate:
        chains = sampler.latent_path[:, :MAX_ANIMATED_CHAINS]
        frames = np.stack([np.asarray(model.generate(z)) for z in chains])
        files.atomic_write(args.animate, lambda path: plot.animation(frames, path))
        written.append(
            f"{args.animate} ({len(frames)} frames, steps "
            f"{sampler.path_steps[0]}..{sampler.path_steps[-1]} every "
            f"{sampler.record_every})"
        )
    print(
        f"Wrote {args.num} samples ({args.sampler} sampler) to " + " and ".join(written)
    )
    return 0


def evaluate(args) -> int:
    """Runs `ebgan-keras eval`; see `ebgan-keras eval --help`."""
    if args.num < 2:
        raise UsageError(f"--num must be at least 2. Received: {args.num}")
    _check_sampler_options(args)
    _check_output_files(args.json)
    model = _load_model(args.model_file)
    import dataclasses

    import numpy as np

    from ebgan_keras.metrics import EvaluationReport
    from ebgan_keras.metrics import MetricResult
    from ebgan_keras.metrics import evaluate as evaluate_model
    from ebgan_keras.metrics import resolve_features

    reference_name = args.reference or _default_reference(model)
    features = resolve_features(args.features, reference_name)
    reference = _load_real(model, reference_name, args.reference_split, "--reference")
    sampler, note = _make_sampler(args, model, reference_name)
    if note:
        print(note)
    # The samples the zoo's evaluation stage scores for a card's row: the same
    # seed stream, clipped to the pixel range (BEGAN's generator has no tanh).
    generated = np.clip(np.asarray(_draw(args, model, sampler)[0]), -1.0, 1.0)
    if features.endswith("_classifier") and model.image_shape[:2] != (28, 28):
        # The domain classifiers read 28x28: both sides are resized the same way.
        from ebgan_keras.zoo.stages import to_feature_size

        limit = args.num_reference
        real = np.concatenate([np.asarray(batch) for batch in reference], axis=0)
        reference = to_feature_size(real[:limit] if limit else real, (28, 28))
        generated = to_feature_size(generated, (28, 28))
    try:
        report = evaluate_model(
            generated,
            reference=reference,
            metrics=args.metrics,
            num_samples=args.num,
            features=features,
            seed=args.seed,
            num_reference=args.num_reference,
            reference_name=reference_name,
            reference_split=args.reference_split,
            kid_subset_size=min(1000, args.num),
        )
    except (ValueError, OSError) as error:
        raise UsageError(f"cannot evaluate {args.model_file!r}: {error}") from None
    # The sampler is part of the protocol: a number without it means nothing.
    sampler_id = SAMPLER_IDS[args.sampler]
    report = EvaluationReport(
        {
            name: MetricResult(
                result.metric,
                result.values,
                dataclasses.replace(
                    result.protocol,
                    details={**result.protocol.details, "sampler": sampler_id},
                ),
            )
            for name, result in report.items()
        }
    )
    print(report)
    if args.json:
        from ebgan_keras import files

        results = report.to_dict()
        if sampler is not None:
            for result in results.values():
                result["protocol"]["details"]["sampler_config"] = sampler.get_config()
        files.write_json(args.json, results)
    return 0


def sweep(args) -> int:
    """Runs `ebgan-keras sweep`; see `ebgan-keras sweep --help`."""
    from ebgan_keras.run import sweeps

    spec = sweeps.read_grid_file(args.grid_file)
    overrides = dict(spec["overrides"])
    if args.steps is not None:
        overrides["training"] = {
            **overrides.get("training", {}),
            "epochs": 1,
            "steps_per_epoch": args.steps,
        }
    evaluation = spec["evaluation"]
    if args.no_eval:
        evaluation = False
    elif args.eval_samples is not None:
        evaluation = {**evaluation, "num_samples": args.eval_samples}
    rows = sweeps.sweep(
        spec["base"],
        args.out,
        grid=spec["grid"],
        trials=spec["trials"],
        num_samples=(
            args.num_samples if args.num_samples is not None else spec["num_samples"]
        ),
        seed=args.seed if args.seed is not None else spec["seed"],
        overrides=overrides,
        evaluation=evaluation,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_trial=args.cpus_per_trial,
        keep_models=not args.delete_models,
        reuse_workers=args.reuse_workers,
    )
    total = len(_sweep_trials(args.out))
    failed = sum(row["error"] is not None for row in rows)
    print(
        f"{len(rows)} of {total} trials finished ({failed} failed, "
        f"{sum(bool(row['diverged']) for row in rows)} diverged) -> "
        f"{os.path.join(args.out, sweeps.RESULTS_FILE)}"
    )
    return 0 if len(rows) == total and not failed else 2


def _sweep_trials(out_dir: str) -> list:
    """The trials of a sweep folder's `sweep.json`."""
    from ebgan_keras import files
    from ebgan_keras.run import sweeps

    spec = files.read_json(os.path.join(out_dir, sweeps.SWEEP_FILE)) or {}
    return spec.get("trials", [])


def export(args) -> int:
    """Runs `ebgan-keras export`; see `ebgan-keras export --help`."""
    from ebgan_keras.run import export as exporting

    if not exporting.tensorflow_available():
        raise UsageError(exporting.NEEDS_TENSORFLOW)
    if os.path.exists(args.path):
        raise UsageError(
            f"PATH must not exist yet (an export never replaces files). "
            f"Received: {args.path}, which exists"
        )
    sampler = "prior" if args.sampler == "none" else args.sampler
    settings = {}
    model = _load_model(args.model_file)
    entry = getattr(model, "zoo_entry", None)
    if entry is not None:
        # The settings the entry's card measured (DDLS: its chosen step size).
        measured = _zoo_module(entry).describe(entry).get("metrics", {})
        card = dict(measured.get(args.sampler, {}).get("sampler", {}))
        settings = {
            key: value
            for key, value in card.items()
            if key in exporting.SAMPLER_SETTINGS[sampler]
        }
    for key in ("threshold", "step_size", "num_steps", "temperature", "noise_scale"):
        value = getattr(args, key)
        if value is None:
            continue
        if key not in exporting.SAMPLER_SETTINGS[sampler]:
            flag = "--" + key.replace("_", "-")
            raise UsageError(
                f"{flag} is not a setting of the {args.sampler} sampler (it takes "
                f"{', '.join(exporting.SAMPLER_SETTINGS[sampler]) or 'none'}). "
                f"Received: {flag} {value} with --sampler {args.sampler}"
            )
        settings[key] = value
    try:
        settings = exporting.check_sampler(sampler, settings)
    except ValueError as error:
        raise UsageError(str(error)) from None
    exporting.export(model, args.path, sampler, settings)
    shown = ", ".join(f"{key}={value}" for key, value in settings.items())
    print(
        f"Wrote a SavedModel to {args.path}: generate(z), energy(images), "
        f"sample(num_samples, seed) with the {args.sampler} sampler"
        + (f" ({shown})" if shown else "")
    )
    return 0


def _entry_line(entry: dict) -> str:
    if entry.get("weights") == "broken":
        return f"{entry['name']:<24} BROKEN: {entry.get('error', '?')}"
    fid = entry.get("fid")
    quality = "-"
    if fid:
        # `prior`: no sampler beats plain sampling by more than the noise band.
        best = "prior: none better" if fid["sampler"] == "prior" else fid["sampler"]
        quality = f"FID {fid['value']:.2f} ({best})"
    shape = "x".join(str(d) for d in entry.get("image_shape") or ())
    return (
        f"{entry['name']:<24} {entry.get('class') or '?':<8} {shape:<8} "
        f"{entry.get('weights', '?'):<8} {quality}"
    )


def zoo(args) -> int:
    """Runs `ebgan-keras zoo`, delegating to `ebgan_keras.zoo`."""
    build_options = ("out", "run_dir", "epochs", "steps_per_epoch", "data")
    build_options += ("data_dir", "num_samples", "reference", "reference_split")
    if args.action != "build":
        given = [name for name in build_options if getattr(args, name) is not None]
        given += ["evaluate_only"] if args.evaluate_only else []
        given += ["card_only"] if args.card_only else []
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is only for `zoo build`. Received: {flag}")
    if args.action == "list":
        if args.name is not None:
            raise UsageError(f"`zoo list` takes no NAME. Received: {args.name!r}")
        entries = list(_zoo_module().list_entries())
        print(f"{'name':<24} {'class':<8} {'images':<8} {'weights':<8} quality")
        for entry in entries:
            print(_entry_line(entry))
        if not entries:
            print("(the zoo has no entries)")
        return 0
    if not args.name:
        raise UsageError(
            f"`zoo {args.action}` needs the NAME of an entry (see `ebgan-keras zoo "
            "list`). Received: no NAME"
        )
    zoo_module = _zoo_module(args.name)
    if args.action == "describe":
        description = _zoo_call(zoo_module.describe, args.name, "describe")
        if args.json or not description.get("card"):
            print(json.dumps(description, indent=1, sort_keys=True, default=str))
        else:
            print(description["card"])
            print(f"(entry folder: {description['path']})")
        return 0
    overrides = {
        name: getattr(args, name)
        for name in build_options[2:]
        if getattr(args, name) is not None
    }
    if args.evaluate_only:
        trains = [n for n in ("epochs", "steps_per_epoch", "data") if n in overrides]
        if trains:
            flag = "--" + trains[0].replace("_", "-")
            raise UsageError(
                f"{flag} trains; --evaluate-only does not. Received: {flag} with "
                "--evaluate-only"
            )
    if args.card_only:
        given = [f"--{n.replace('_', '-')}" for n in overrides]
        given += ["--run-dir"] if args.run_dir is not None else []
        given += ["--evaluate-only"] if args.evaluate_only else []
        if given:
            raise UsageError(
                f"--card-only takes only --out. Received: {given[0]} with --card-only"
            )
        metadata = _zoo_call(
            lambda name: zoo_module.rewrite_card(name, out_dir=args.out),
            args.name,
            "build",
        )
        out = args.out or os.path.join("zoo_builds", args.name)
        print(f"Rewrote the card of {args.name} -> {out} (nothing measured again)")
        return 0
    build = zoo_module.reevaluate if args.evaluate_only else zoo_module.build
    metadata = _zoo_call(
        lambda name: build(name, out_dir=args.out, run_dir=args.run_dir, **overrides),
        args.name,
        "build",
    )
    measured = ", ".join(
        f"{sampler}: FID {result['fid']:.2f}"
        for sampler, result in metadata["metrics"].items()
    )
    out = args.out or os.path.join("zoo_builds", args.name)
    print(
        f"Built {args.name} in {metadata['training']['wall_time_s'] / 60:.1f} min "
        f"of training ({metadata['training']['steps']} steps) -> {out} ({measured})"
    )
    return 0


# ----------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------
def _set_backend(backend: str | None) -> None:
    """Sets the Keras backend before Keras is imported (no second process)."""
    if backend is None:
        return
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = backend
        return
    if keras.backend.backend() != backend:
        raise UsageError(
            f"--backend {backend}: this process has already imported Keras with "
            f"the {keras.backend.backend()!r} backend; run the command in a new "
            f"process (or set KERAS_BACKEND={backend} before importing Keras). "
            f"Received: --backend {backend}"
        )


def _user_errors() -> tuple:
    """The exceptions that are the user's to fix: one line, exit code 2."""
    from ebgan_keras.files import RunFolderError
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.sweeps import SweepError
    from ebgan_keras.run.training import DataError

    return (
        UsageError,
        ConfigError,
        DataError,
        RunFolderError,
        FloatingPointError,
        SweepError,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `ebgan-keras`; returns the exit code.

    Args:
        argv: list of str. Arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        0 on success, 2 on a user error (bad arguments, missing files or
        data, an unwritable or busy folder, a full disk, a diverged run),
        1 on an internal error, 3 when another process of a distributed
        run was lost, each printed as one line without a traceback
        unless `--verbose` is given, and 130 when interrupted.

    Example:

    ```python
    from ebgan_keras.cli import main

    main(["train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "5",
          "--out", "runs/quickstart"])
    ```
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not args.debug:
        # Before TensorFlow is imported, or its C++ log lines reach the user.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    commands = {
        "train": train,
        "sample": sample,
        "eval": evaluate,
        "export": export,
        "sweep": sweep,
        "zoo": zoo,
    }
    try:
        _set_backend(args.backend)
        if args.command != "zoo" or args.action == "build":
            import ebgan_keras.models  # noqa: F401 - registers the models
        return commands[args.command](args)
    except KeyboardInterrupt:
        print(
            "\nInterrupted. Rerun the same command to continue where the last "
            "checkpoint ended.",
            file=sys.stderr,
        )
        return 130
    except Exception as error:  # noqa: BLE001 - sorted below
        if args.debug:
            raise
        if isinstance(error, PeerFailure):
            print(f"ebgan-keras {args.command}: error: {error}", file=sys.stderr)
            if "multi-process" in str(error):
                # JAX's shutdown would wait for the lost process at a barrier
                # (and abort after its heartbeat timeout): leave now.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(3)
            return 3
        if not isinstance(error, _user_errors()):
            # A bug of ours, not the user's: still one line, with the way to
            # the traceback.
            print(
                f"ebgan-keras {args.command}: internal error: "
                f"{type(error).__name__}: {error} (rerun with `ebgan-keras "
                "--verbose ...` for the traceback, and please report it)",
                file=sys.stderr,
            )
            return 1
        message = str(error)
        if isinstance(error, OSError) and error.strerror and not error.filename:
            message = error.strerror
        print(f"ebgan-keras {args.command}: error: {message}", file=sys.stderr)
        return 2

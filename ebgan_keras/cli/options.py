"""Flags and validators shared by the subparsers of `ebgan-keras`, defined once.

Nothing here imports Keras: the parser is built before `--backend` is set.
"""

from __future__ import annotations

import argparse

#: `--sampler` choices and the `ek.samplers` id of each.
SAMPLER_IDS = {
    "none": "prior",
    "truncation": "truncation",
    "ddls": "ddls",
    "rejection": "rejection",
    "mh": "metropolis_hastings",
}
SAMPLERS = tuple(SAMPLER_IDS)
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


#: Seeds run from 0 to 2**32 - 1 (numpy's and the backends' seeds).
MAX_SEED = 2**32 - 1


def seed(text: str) -> int:
    """A `--seed`: an integer from 0 to 2**32 - 1."""
    value = integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 0 to {MAX_SEED}, got {text!r}"
        )
    return value


def metric_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(METRICS)}, got {text!r}"
        )
    return names


def ddls_temperature(text: str):
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


def add_sampler_options(parser: argparse.ArgumentParser, command: str) -> None:
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
        type=ddls_temperature,
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
        type=positive_int,
        default=NUM_CALIBRATION,
        help=f"real images in the calibration, at most the split's "
        f"(default: {NUM_CALIBRATION})",
    )


def add_backend(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help="Keras backend (default: $KERAS_BACKEND, else Keras's own default)",
    )


def subparser(subparsers, name: str, help_text: str, description: str, epilog: str):
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_backend(parser, argparse.SUPPRESS)
    return parser

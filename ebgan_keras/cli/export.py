"""`ebgan-keras export`: a TensorFlow SavedModel of a model and its sampler."""

from __future__ import annotations

import os

from ebgan_keras.cli import models
from ebgan_keras.cli import options
from ebgan_keras.cli import sampling
from ebgan_keras.cli.errors import UsageError

EXPORT_EXAMPLE = """examples:
  ebgan-keras export ebgan_pt_mnist exported/ebgan_pt_ddls --sampler ddls
  ebgan-keras export runs/quickstart/model.keras exported/q --sampler truncation \\
      --threshold 0.7

Then, with TensorFlow alone:
  served = tf.saved_model.load("exported/ebgan_pt_ddls")
  out = served.sample(tf.constant(16), tf.constant(0, tf.int64))
  out["images"], out["latents"]"""


def add_parser(subparsers) -> None:
    """Adds `export` and its flags to the subparsers of `ebgan-keras`."""
    export = options.subparser(
        subparsers,
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
        (
            "--num-steps",
            options.positive_int,
            "ddls: steps (default: the card's, else 100)",
        ),
        ("--temperature", float, "ddls: temperature (default: the card's, else 1)"),
        ("--noise-scale", float, "ddls: noise scale (default: the card's, else 1)"),
    ):
        export.add_argument(flag, type=kind, help=help_text)


def run(args) -> int:
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
    model = models.load_model(args.model_file)
    settings = _settings(args, model, sampler)
    exporting.export(model, args.path, sampler, settings)
    shown = ", ".join(f"{key}={value}" for key, value in settings.items())
    if sampler == "ddls":
        chain = settings["temperature"] * settings["temperature_scale"]
        shown += f"; the chain runs at T = {chain:.4g}"
    print(
        f"Wrote a SavedModel to {args.path}: generate(z), energy(images), "
        f"sample(num_samples, seed) with the {args.sampler} sampler"
        + (f" ({shown})" if shown else "")
    )
    return 0


def _settings(args, model, sampler: str) -> dict:
    """The exported sampler's settings: the card's (a zoo entry's), then the
    flags, checked and filled in by `ek.run.export.check_sampler`."""
    from ebgan_keras.run import export as exporting
    from ebgan_keras.samplers import factory

    card = sampling.card_settings(model, sampler)
    settings = {k: v for k, v in card.items() if k not in factory.RUN_ONLY}
    flags = ("threshold", "step_size", "num_steps", "temperature", "noise_scale")
    taken = [key for key in flags if key in exporting.SAMPLER_SETTINGS[sampler]]
    for key in flags:
        value = getattr(args, key)
        if value is None:
            continue
        if key not in taken:
            flag = "--" + key.replace("_", "-")
            raise UsageError(
                f"{flag} is not a setting of the {args.sampler} sampler (it takes "
                f"{', '.join(taken) or 'none'}). "
                f"Received: {flag} {value} with --sampler {args.sampler}"
            )
        if key == "temperature":
            # A fixed temperature replaces the card's calibrated one.
            settings.pop("calibration", None)
        settings[key] = value
    try:
        return exporting.check_sampler(sampler, settings)
    except ValueError as error:
        raise UsageError(str(error)) from None

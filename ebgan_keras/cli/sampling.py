"""The latent sampler of `sample` and `eval`, from `--sampler` and a zoo card."""

from __future__ import annotations

from ebgan_keras.cli import models
from ebgan_keras.cli.errors import UsageError


def check_sampler_options(args) -> None:
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


def card_settings(model, sampler: str) -> dict:
    """A zoo entry's sampler settings (`samplers.factory.card_settings`); {}
    for a model that is not a zoo entry's."""
    entry = getattr(model, "zoo_entry", None)
    if entry is None:
        return {}
    from ebgan_keras.samplers import factory

    description = models.zoo_module(entry).describe(entry)
    try:
        return factory.card_settings(description, sampler, f"zoo entry {entry!r}")
    except ValueError as error:
        raise UsageError(str(error)) from None


def make_sampler(args, model, reference: str | None):
    """The sampler of `--sampler`, calibrated where it needs it.

    A zoo entry's sampler has its card's settings; `--ddls-temperature`
    replaces the card's temperature (not its temperature scale).

    Args:
        args: the parsed arguments.
        model: the loaded model.
        reference: str. The data set of the calibration images; None for
            the default (`models.default_reference`).

    Returns:
        `(sampler, note)`: an `ek.samplers` sampler (None for `none`) and
        the lines that say its settings and what was calibrated on what.
    """
    if args.sampler == "none":
        return None, ""
    from ebgan_keras.samplers import factory

    settings = card_settings(model, args.sampler)
    if args.sampler == "ddls" and args.ddls_temperature is not None:
        settings.pop("calibration", None)
        settings["temperature"] = args.ddls_temperature
    real = None
    if factory.needs_real_images(args.sampler, settings):
        reference = reference or models.default_reference(model)
        real = models.calibration_images(model, args, reference)
    try:
        sampler = factory.make_sampler(
            args.sampler, settings, model=model, seed=args.seed, real_images=real
        )
    except ValueError as error:
        flag = f"--sampler {args.sampler}"
        if args.sampler == "ddls" and real is not None:
            flag = "--ddls-temperature calibrated"
        raise UsageError(f"{flag}: {error}") from None
    return sampler, _note(args, sampler, real, reference) + _settings_line(sampler)


def _note(args, sampler, real, reference: str | None) -> str:
    """What the sampler's calibration was fitted on (or taken from)."""
    if real is not None:
        note = (
            f"Calibrated the energy on {len(real)} {reference}/"
            f"{args.calibration_split} images: slope {sampler.calibration.slope:.4g}"
        )
        if args.sampler == "ddls":
            note += f", DDLS temperature {sampler.temperature:.4g}"
        return note + "\n"
    if args.sampler == "ddls" and sampler.calibration is not None:
        return (
            f"The card's energy calibration: slope "
            f"{sampler.calibration.slope:.4g}, DDLS temperature "
            f"{sampler.temperature:.4g} (--ddls-temperature calibrated refits it)\n"
        )
    return ""


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


def draw(args, model, sampler):
    """`(images, latents)` of `--num` samples, as numpy.

    The sampler was made with `seed=--seed` and draws the first call of its
    seed stream (after its calibration, if any), as the zoo's evaluation
    stage does: so `eval ENTRY --sampler NAME` reproduces the card's row.
    """
    if sampler is None:
        from ebgan_keras import samplers

        sampler = samplers.get({"class_name": "prior", "config": {"seed": args.seed}})
    return sampler.sample(model, args.num)

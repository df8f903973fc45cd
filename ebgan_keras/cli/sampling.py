"""The latent sampler of `sample` and `eval`, from `--sampler` and a zoo card."""

from __future__ import annotations

from ebgan_keras.cli import models
from ebgan_keras.cli import options
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


def _card_settings(model, sampler_id: str) -> dict:
    """A zoo entry's sampler settings: its recipe's, DDLS's chosen step size."""
    entry = getattr(model, "zoo_entry", None)
    if entry is None:
        return {}
    description = models.zoo_module(entry).describe(entry)
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


def make_sampler(args, model, reference: str | None):
    """The sampler of `--sampler`, calibrated where it needs it.

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
    try:
        from ebgan_keras import samplers
    except ImportError as error:
        raise UsageError(
            f"--sampler {args.sampler} needs ebgan_keras.samplers, which this "
            f"installation lacks ({error}). Use --sampler none."
        ) from None
    sampler_id = options.SAMPLER_IDS[args.sampler]
    settings = _card_settings(model, sampler_id)
    settings.pop("seed", None)
    calibrated = args.sampler in options.CALIBRATED_SAMPLERS
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
    reference = reference or models.default_reference(model)
    real = models.calibration_images(model, args, reference)
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

"""The one way from settings to a sampler: a zoo card's, a recipe's, the CLI's.

Settings written somewhere else (a zoo entry's `config.json` and
`metadata.json`, a recipe's `evaluation.samplers`, the flags of
`ebgan-keras sample`, `eval` and `export`) become a sampler here and nowhere
else:

- `card_settings(description, sampler)`: what a zoo card's sampler ran with:
  the recipe's settings and, for DDLS, what the card's sweep chose (step
  size, steps, temperature scale) and the energy calibration it fitted;
- `check_settings(sampler, settings, source)`: every setting checked by one
  set of rules (finite, in range, a bounded step count), naming `source`;
- `make_sampler(sampler, settings, model=..., seed=..., real_images=...)`:
  the sampler, a `"calibrated"` DDLS temperature taken from a fitted
  calibration or fitted on `real_images`, with this backend's compile
  policy (`compile_options`).

Example:

```python
from ebgan_keras import zoo
from ebgan_keras.samplers import factory

model = zoo.load("ebgan_pt_mnist")
settings = factory.card_settings(zoo.describe("ebgan_pt_mnist"), "ddls")
sampler = factory.make_sampler("ddls", settings, model=model, seed=0)
sampler.chain_temperature  # the card's T * temperature_scale
```
"""

from __future__ import annotations

import inspect
import math
import warnings

from ebgan_keras.samplers.calibration import EnergyCalibration
from ebgan_keras.samplers.ddls import DDLS
from ebgan_keras.samplers.metropolis_hastings import MetropolisHastings
from ebgan_keras.samplers.rejection import RejectionSampler
from ebgan_keras.samplers.sampler import Prior
from ebgan_keras.samplers.truncation import Truncation

#: The DDLS temperature taken from the energy's calibration.
CALIBRATED = "calibrated"
#: The sampler classes by id; `ALIASES` maps the CLI's names onto them.
CLASSES = {
    "prior": Prior,
    "truncation": Truncation,
    "ddls": DDLS,
    "rejection": RejectionSampler,
    "metropolis_hastings": MetropolisHastings,
}
ALIASES = {"none": "prior", "mh": "metropolis_hastings"}
#: Samplers that fit the energy's calibration on real images.
CALIBRATED_SAMPLERS = ("rejection", "metropolis_hastings")
#: The most Langevin steps (or MH proposals per output) a setting may ask for:
#: DDLS draws its noise up front, `num_steps x batch x latent_dim` floats.
MAX_STEPS = 10_000
#: Settings that change how a sampler runs, not what it draws.
RUN_ONLY = ("batch_size", "jit_compile", "record_energy", "record_every")


def canonical_name(sampler: str) -> str:
    """The sampler id of a name or alias (`"none"` -> `"prior"`, `"mh"`)."""
    name = ALIASES.get(sampler, sampler)
    if name not in CLASSES:
        raise ValueError(
            f"`sampler` must be one of {sorted(CLASSES) + sorted(ALIASES)}. "
            f"Received: sampler={sampler!r}"
        )
    return name


# ----------------------------------------------------------------------
# The rules, one per setting
# ----------------------------------------------------------------------
def _number(value, name: str, minimum: float, strict: bool) -> float:
    number = None
    if not isinstance(value, (bool, str)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if (
        number is None
        or not math.isfinite(number)
        or number < minimum
        or (strict and number == minimum)
    ):
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{name}` must be a finite number {relation} {minimum:g}. "
            f"Received: {name}={value!r}"
        )
    return number


def _count(value, name: str, maximum: int | None = MAX_STEPS) -> int:
    integral = not isinstance(value, (bool, str))
    if integral:
        try:
            integral = float(value) == int(value)
        except (TypeError, ValueError, OverflowError):
            integral = False
    if not integral or value < 1 or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(
            f"`{name}` must be an int >= 1{upper}. Received: {name}={value!r}"
        )
    return int(value)


def _temperature(value, name: str):
    if value == CALIBRATED:
        return value
    try:
        return _number(value, name, 0.0, strict=True)
    except ValueError:
        raise ValueError(
            f"`{name}` must be {CALIBRATED!r} or a finite number > 0. "
            f"Received: {name}={value!r}"
        ) from None


def _calibration(value, name: str):
    if value is None or isinstance(value, EnergyCalibration):
        return value
    if not isinstance(value, dict) or set(value) != {"slope", "intercept"}:
        raise ValueError(
            f"`{name}` must be an object with `slope` and `intercept`. "
            f"Received: {name}={value!r}"
        )
    for key in ("slope", "intercept"):
        _number(value[key], f"{name}.{key}", -math.inf, strict=False)
    return {key: float(value[key]) for key in ("slope", "intercept")}


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be true or false. Received: {name}={value!r}")
    return value


def _optional(rule):
    return lambda value, name: None if value is None else rule(value, name)


RULES = {
    "threshold": lambda v, n: _number(v, n, 0.0, strict=True),
    "step_size": lambda v, n: _number(v, n, 0.0, strict=True),
    "temperature": _temperature,
    "temperature_scale": lambda v, n: _number(v, n, 0.0, strict=True),
    "noise_scale": lambda v, n: _number(v, n, 0.0, strict=False),
    "epsilon": lambda v, n: _number(v, n, 0.0, strict=True),
    "gamma_percentile": lambda v, n: _number(v, n, 0.0, strict=False),
    "d_max": _optional(lambda v, n: _number(v, n, -math.inf, strict=False)),
    "gamma": _optional(lambda v, n: _number(v, n, -math.inf, strict=False)),
    "num_steps": _count,
    "chain_length": _count,
    "max_proposals": lambda v, n: _count(v, n, maximum=None),
    "batch_size": lambda v, n: _count(v, n, maximum=None),
    "num_generated": _optional(lambda v, n: _count(v, n, maximum=None)),
    "record_every": _optional(lambda v, n: _count(v, n, maximum=None)),
    "calibration": _calibration,
    "metropolis": _flag,
    "record_energy": _flag,
    "jit_compile": _flag,
}


def accepted_settings(sampler: str) -> tuple[str, ...]:
    """The settings a sampler takes: its constructor's arguments and, for a
    sampler that fits a calibration, its `calibrate`'s, but `seed`."""
    cls = CLASSES[canonical_name(sampler)]
    names = list(inspect.signature(cls).parameters)
    if hasattr(cls, "calibrate"):
        for name, parameter in inspect.signature(cls.calibrate).parameters.items():
            if parameter.kind == parameter.VAR_KEYWORD or name in names:
                continue
            if name not in ("model", "real_images"):
                names.append(name)
    return tuple(name for name in names if name != "seed")


def check_settings(sampler: str, settings: dict | None, source: str = "") -> dict:
    """Checks a sampler's settings by the rules of the CLI's flags.

    Args:
        sampler: str. A sampler id (`"ddls"`, ...) or alias (`"none"`, `"mh"`).
        settings: dict or None. The settings; a `seed` is dropped (the caller
            gives the seed).
        source: str. Where the settings come from, to name in an error
            (e.g. `"zoo entry 'x' metadata.json"`). Defaults to `""`.

    Returns:
        The checked settings (numbers as float or int).

    Raises:
        ValueError: a setting the sampler does not take, or a value out of
            range (NaN, infinite, negative, a step count over `MAX_STEPS`),
            naming the setting, `source` and the value received.
    """
    name = canonical_name(sampler)
    prefix = f"{source}: " if source else ""
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(
            f"{prefix}the {name} sampler's settings must be an object. "
            f"Received: {settings!r}"
        )
    settings = {k: v for k, v in (settings or {}).items() if k != "seed"}
    allowed = accepted_settings(name)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(
            f"{prefix}unknown setting(s) {unknown} for the {name} sampler; it "
            f"takes {list(allowed)}. Received: {settings!r}"
        )
    checked = {}
    for key, value in settings.items():
        rule = RULES.get(key)
        try:
            checked[key] = value if rule is None else rule(value, key)
        except ValueError as error:
            raise ValueError(f"{prefix}{error}") from None
    return checked


# ----------------------------------------------------------------------
# A zoo card's settings
# ----------------------------------------------------------------------
def _mapping(parent: dict, key: str, where: str) -> dict:
    value = parent.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(
            f"{where}: `{key}` must be an object. Received: {key}={value!r}"
        )
    return value


def card_settings(description: dict, sampler: str, source: str = "") -> dict:
    """The settings a zoo card's sampler ran with, checked.

    The recipe's `evaluation.samplers` entry and, for DDLS, what the card
    measured with: the step size, steps and temperature scale its sweep
    chose and, for a `"calibrated"` temperature, the calibration it fitted
    (or, where the fit gave no temperature, the fixed one it fell back to).

    Args:
        description: dict. The entry's metadata with its recipe under
            `"recipe"` (`ek.zoo.describe(name)`).
        sampler: str. A sampler id or alias.
        source: str. Where the card is, for errors. Defaults to `""`.

    Returns:
        dict of settings for `make_sampler`.
    """
    name = canonical_name(sampler)
    where = source or "the zoo card"
    recipe = _mapping(description, "recipe", where)
    evaluation = _mapping(recipe, "evaluation", f"{where} config.json")
    samplers = _mapping(evaluation, "samplers", f"{where} config.json evaluation")
    settings = dict(_mapping(samplers, name, f"{where} config.json samplers"))
    metrics = _mapping(description, "metrics", f"{where} metadata.json")
    result = _mapping(metrics, name, f"{where} metadata.json metrics")
    measured = _mapping(result, "sampler", f"{where} metadata.json metrics.{name}")
    if name == "ddls":
        for key in ("step_size", "num_steps", "temperature_scale"):
            if key in measured:
                settings[key] = measured[key]
        if settings.get("temperature") == CALIBRATED:
            if measured.get("calibration"):
                settings["calibration"] = measured["calibration"]
            elif measured.get("temperature") is not None:
                # The fit gave no temperature; the card ran at this one.
                settings["temperature"] = measured["temperature"]
    return check_settings(name, settings, f"{where} metadata.json")


# ----------------------------------------------------------------------
# The sampler
# ----------------------------------------------------------------------
def has_convolutions(model) -> bool:
    """Whether any network of the model has convolution layers."""
    from ebgan_keras.backend.keras_internals import walk_layers

    return any(
        "Conv" in type(layer).__name__
        for network in model.networks().values()
        for layer in walk_layers(network, include_self=False)
    )


def compile_options(model) -> dict:
    """DDLS options for this backend: no XLA for conv nets on TensorFlow.

    The samplers compile with XLA by default; XLA on CPU computes convolution
    gradients on a slow path (measured on the BEGAN 32x32 nets: a DDLS step 8x
    slower than TensorFlow without XLA), so convolutional models sample on
    TensorFlow as `tf.function` graphs without XLA.
    """
    from ebgan_keras import backend

    if backend.XLA_SLOW_CONVOLUTIONS and has_convolutions(model):
        return {"jit_compile": False}
    return {}


def needs_real_images(sampler: str, settings: dict | None) -> bool:
    """Whether `make_sampler` fits a calibration on real images for these."""
    name = canonical_name(sampler)
    settings = settings or {}
    if settings.get("calibration") is not None:
        return False
    if name == "ddls":
        return settings.get("temperature") == CALIBRATED
    return name in CALIBRATED_SAMPLERS


def make_sampler(
    sampler: str,
    settings: dict | None = None,
    model=None,
    seed: int | None = None,
    real_images=None,
    fallback: bool = False,
    source: str = "",
):
    """The sampler of some settings; the only place settings become a sampler.

    Args:
        sampler: str. A sampler id (`"prior"`, `"truncation"`, `"ddls"`,
            `"rejection"`, `"metropolis_hastings"`) or alias (`"none"`, `"mh"`).
        settings: dict. Its settings (`check_settings`). A DDLS `temperature`
            of `"calibrated"` is `1 / slope` of the `calibration` given with
            it (a card's fit: the seed stream then skips the fit's draw, as
            `DDLS.from_calibration`), else of a fit on `real_images`.
        model: the model to sample. Needed to fit a calibration; sets the
            compile policy of DDLS (`compile_options`). Defaults to `None`.
        seed: int. The sampler's seed. Defaults to `None`.
        real_images: array. Held-out real images for a calibration
            (`needs_real_images`). Defaults to `None`.
        fallback: bool. Where the energy gives no calibrated temperature (a
            slope `<= 0`), run DDLS at temperature 1 with a warning instead
            of raising (the zoo's recipes). Defaults to `False`.
        source: str. Where the settings come from, for errors.

    Returns:
        An `ek.samplers` sampler.
    """
    name = canonical_name(sampler)
    settings = check_settings(name, settings, source)
    if name == "ddls" and model is not None:
        settings.update(compile_options(model))
    cls = CLASSES[name]
    if not needs_real_images(name, settings):
        # Settings of the calibration's fit (`burn_in`, ...) have no fit to set.
        taken = inspect.signature(cls).parameters
        settings = {k: v for k, v in settings.items() if k in taken}
        if name == "ddls" and settings.get("temperature") == CALIBRATED:
            settings.pop("temperature")
            return DDLS.from_calibration(settings.pop("calibration"), seed, **settings)
        return cls(seed=seed, **settings)
    if real_images is None or model is None:
        prefix = f"{source}: " if source else ""
        raise ValueError(
            f"{prefix}the {name} sampler calibrates the energy on real images "
            "(or takes a fitted `calibration`); none were given. Received: "
            f"real_images={None if real_images is None else len(real_images)}"
        )
    settings.pop("temperature", None)
    settings.pop("calibration", None)
    try:
        return cls.calibrate(model, real_images, seed=seed, **settings)
    except ValueError as error:
        if not (fallback and name == "ddls"):
            raise
        warnings.warn(
            f"DDLS runs at temperature 1.0: no calibrated temperature ({error})",
            stacklevel=2,
        )
        return DDLS(seed=seed, temperature=1.0, **settings)


__all__ = [
    "CALIBRATED",
    "MAX_STEPS",
    "accepted_settings",
    "canonical_name",
    "card_settings",
    "check_settings",
    "compile_options",
    "has_convolutions",
    "make_sampler",
    "needs_real_images",
]

"""A sweep's plan: its grid file, its trials, each trial's config checked.

`plan` turns a base config, a grid (or explicit trials) and overrides into
the list of trials, and checks every trial's config before any trial runs:
unknown keys (schema fields, model arguments, network builder arguments)
and values of the wrong type are refused, naming the key. See
`ebgan_keras.run.sweeps`.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import random

from ebgan_keras.run.builder import network_builder
from ebgan_keras.run.config import TRAINING
from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import load_config
from ebgan_keras.run.config import merge
from ebgan_keras.run.config import validate

#: Keys of a grid file.
GRID_KEYS = ("base", "overrides", "grid", "trials", "num_samples", "seed", "evaluation")
#: Evaluation settings of a sweep and their defaults.
EVALUATION_DEFAULTS = {
    "metrics": ["fid", "is"],
    "reference": None,  # None: the training data set's name.
    "reference_split": "test",
    "features": "auto",
    "num_samples": 5000,
    "seed": 0,
}


class SweepError(ValueError):
    """A sweep that cannot run: bad grid, missing Ray, other trials in the folder."""


# ----------------------------------------------------------------------
# Grids and trials
# ----------------------------------------------------------------------
def _received(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def set_path(config: dict, path: str, value) -> dict:
    """`config` with the field at a dotted path set (a new dict).

    Args:
        config: dict. A run config.
        path: str. A dotted path such as `"training.learning_rate"` or
            `"generator.kwargs.hidden_units"`.
        value: the value to set.

    Returns:
        A new config dict.
    """
    result = copy.deepcopy(config)
    node = result
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise SweepError(
                f"grid key `{path}`: `{key}` is not a JSON object in the base "
                f"config. Received: {_received(node)}"
            )
    node[keys[-1]] = copy.deepcopy(value)
    return result


def _type_of_default(default) -> tuple[str, object] | None:
    """What a keyword argument's default says about its expected type."""
    if default is inspect.Parameter.empty or default is None:
        return None
    if isinstance(default, bool):
        return "a bool", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return "an int", lambda v: isinstance(v, int) and not isinstance(v, bool)
    if isinstance(default, float):
        return (
            "a number",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        )
    if isinstance(default, str):
        return "a string", lambda v: isinstance(v, str)
    if isinstance(default, (list, tuple)):
        return "a list", lambda v: isinstance(v, (list, tuple))
    if isinstance(default, dict):
        return "a JSON object", lambda v: isinstance(v, dict)
    return None


def _parameters(function) -> dict:
    """Keyword parameters of a function or of a class's `__init__` chain."""
    if isinstance(function, type):
        parameters = {}
        for cls in function.__mro__:
            init = cls.__dict__.get("__init__")
            if init is None or cls.__module__.startswith("keras"):
                continue
            for name, parameter in inspect.signature(init).parameters.items():
                if name != "self" and parameter.kind not in (
                    parameter.VAR_KEYWORD,
                    parameter.VAR_POSITIONAL,
                ):
                    parameters.setdefault(name, parameter)
        return parameters
    return {
        name: parameter
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
    }


def _check_argument(path: str, name: str, value, parameters: dict, owner: str) -> None:
    if name not in parameters:
        raise SweepError(
            f"unknown grid key `{path}`: {owner} takes no argument `{name}`; it "
            f"takes {', '.join(sorted(parameters))}. Received: {path}={value!r}"
        )
    expected = _type_of_default(parameters[name].default)
    if expected is not None and not expected[1](value):
        raise SweepError(
            f"grid key `{path}` must be {expected[0]} (as its default "
            f"{parameters[name].default!r}). Received: {path}={_received(value)}"
        )


def check_trial_config(config: dict, overrides: dict, source: str = "grid") -> dict:
    """Checks one trial's config and the paths it overrides, before any trial.

    Args:
        config: dict. The trial's run config (base with overrides applied).
        overrides: dict. `{dotted path: value}` of the trial.
        source: str. Where the trial came from, for error messages.

    Returns:
        The validated config (defaults filled in).

    Raises:
        SweepError: an unknown key or a value of the wrong type, named.
    """
    from ebgan_keras.run import config as schema

    roles = schema.network_roles(config.get("class"))
    fields = schema.top_level_fields(roles)
    for path, value in overrides.items():
        _check_override(config, path, value, fields, roles)
    # Every argument of the final config (the base's included) must exist:
    # a trial that changes a builder or class must bring fitting arguments.
    for role in roles:
        _check_network_arguments(config, role, source)
    try:
        checked = validate(config, source)
        cls = schema.model_class(checked["class"])
    except ConfigError as error:
        raise SweepError(str(error)) from None
    known = _parameters(cls)
    for argument in checked["model"]:
        if argument not in known:
            raise SweepError(
                f"{source}: `model.{argument}` is not an argument of "
                f"{cls.__name__}; set `model` whole when a trial changes the class. "
                f"Received: model={checked['model']!r}"
            )
    return checked


def _check_override(config, path: str, value, fields: dict, roles: tuple) -> None:
    """One grid path of a trial: a schema field, a model or network argument."""
    from ebgan_keras.run.config import model_class

    keys = path.split(".")
    if keys[0] not in fields:
        raise SweepError(
            f"unknown grid key `{path}`: `{keys[0]}` is not a field of the run "
            f"config ({', '.join(sorted(fields))}). Received: {path}={value!r}"
        )
    if keys[0] == "training" and len(keys) == 2 and keys[1] not in TRAINING:
        raise SweepError(
            f"unknown grid key `{path}`: the fields of `training` are "
            f"{', '.join(sorted(TRAINING))}. Received: {path}={value!r}"
        )
    if keys[0] == "model" and len(keys) <= 2:
        cls = model_class(config["class"])
        arguments = {keys[1]: value} if len(keys) == 2 else value
        for name, argument in (arguments or {}).items():
            _check_argument(
                f"model.{name}",
                name,
                argument,
                _parameters(cls),
                f"model class {cls.__name__}",
            )
    if keys[0] in roles and len(keys) >= 2:
        _check_network_override(config, path, keys, value)


def _check_network_override(config, path: str, keys: list, value) -> None:
    """A grid path into a network: `ROLE.builder` or `ROLE.kwargs.NAME`."""
    if keys[1] not in ("builder", "kwargs") or len(keys) > 3:
        raise SweepError(
            f"unknown grid key `{path}`: `{keys[0]}` has `builder` and "
            f"`kwargs.NAME`. Received: {path}={value!r}"
        )
    name = config[keys[0]].get("builder")
    function = network_builder(name)
    if function is None:
        raise SweepError(
            f"`{keys[0]}.builder` must name a function of ek.networks. "
            f"Received: {keys[0]}.builder={name!r}"
        )
    if keys[1] == "kwargs":
        arguments = {keys[2]: value} if len(keys) == 3 else value
        for argument_name, argument in (arguments or {}).items():
            _check_argument(
                f"{keys[0]}.kwargs.{argument_name}",
                argument_name,
                argument,
                _parameters(function),
                f"network builder `{name}`",
            )


def _check_network_arguments(config: dict, role: str, source: str) -> None:
    """Every kwarg of a network's config is an argument of its builder."""
    name = (config.get(role) or {}).get("builder")
    function = network_builder(name)
    if function is None:
        return
    known = _parameters(function)
    for argument in config[role].get("kwargs", {}):
        if argument not in known:
            raise SweepError(
                f"{source}: `{role}.kwargs.{argument}` is not an argument "
                f"of `{name}` ({', '.join(sorted(known))}); set "
                f"`{role}.kwargs` whole when a trial changes the builder."
                f" Received: {role}.kwargs={config[role]['kwargs']!r}"
            )


def grid_size(grid: dict) -> int:
    """The number of points of a grid `{path: [values, ...]}`."""
    return math.prod(len(values) for values in grid.values())


def grid_point(grid: dict, index: int) -> dict:
    """The `index`-th point of a grid, in row-major order of its sorted keys.

    Args:
        grid: dict. `{dotted path: [values, ...]}`.
        index: int. In `[0, grid_size(grid))`.

    Returns:
        `{dotted path: value}`.
    """
    point = {}
    for key in reversed(sorted(grid)):
        values = grid[key]
        index, position = divmod(index, len(values))
        point[key] = values[position]
    return dict(sorted(point.items()))


def _check_grid(grid) -> None:
    if not isinstance(grid, dict):
        raise SweepError(
            f"`grid` must be a JSON object {{dotted path: [values]}}. "
            f"Received: {_received(grid)}"
        )
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(
                f"grid key `{key}` must list its values (a non-empty list). "
                f"Received: {key}={_received(values)}"
            )


def expand(grid: dict, num_samples: int | None = None, seed: int = 0) -> list[dict]:
    """The trials' overrides of a grid, or of a seeded random subset of it.

    Args:
        grid: dict. `{dotted path: [values, ...]}`.
        num_samples: int or None. Draw this many distinct points at random
            (seeded), in grid order; `None`: every point. Defaults to `None`.
        seed: int. Seed of the draw. Defaults to `0`.

    Returns:
        A list of `{dotted path: value}`.

    Example:

    >>> expand({"model.margin": [1.0, 2.0], "training.learning_rate": [0.1]})
    [{'model.margin': 1.0, 'training.learning_rate': 0.1}, \
{'model.margin': 2.0, 'training.learning_rate': 0.1}]
    """
    _check_grid(grid)
    size = grid_size(grid)
    if num_samples is None:
        indices = range(size)
    else:
        if not isinstance(num_samples, int) or not 1 <= num_samples <= size:
            raise SweepError(
                f"`num_samples` must be an int in [1, {size}] (the grid's size). "
                f"Received: num_samples={num_samples!r}"
            )
        indices = sorted(random.Random(seed).sample(range(size), num_samples))
    return [grid_point(grid, index) for index in indices]


def plan(
    base,
    grid: dict | None = None,
    trials: list | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    overrides: dict | None = None,
) -> list[dict]:
    """The checked trials of a sweep: `{"index", "overrides", "config"}` each.

    Every trial's config is built and checked here, so a bad grid fails
    before any trial starts. A trial that does not set `training.seed` gets
    `base seed + index`.

    Args:
        base: str or dict. A config name or path (`load_config`) or a config.
        grid: dict. `{dotted path: [values]}` (a product grid).
        trials: list of dict. Explicit trials `{dotted path: value}` instead
            of (or after) the grid's points.
        num_samples: int. Random subset of the grid's points.
        seed: int. Seed of the subset and base of the trials' seeds.
        overrides: dict. Nested overrides of the base config for every trial.

    Returns:
        The list of trials.
    """
    config = load_config(base) if isinstance(base, (str, os.PathLike)) else base
    config = merge(validate(config), overrides or {})
    points = expand(grid, num_samples, seed) if grid else []
    for position, trial in enumerate(trials or []):
        if not isinstance(trial, dict):
            raise SweepError(
                f"`trials[{position}]` must be a JSON object {{dotted path: value}}. "
                f"Received: {_received(trial)}"
            )
        points.append(dict(trial))
    if not points:
        raise SweepError("a sweep needs a `grid` or `trials`. Received: neither")
    planned = []
    for index, point in enumerate(points):
        trial_config = config
        for path, value in point.items():
            trial_config = set_path(trial_config, path, value)
        if "training.seed" not in point:
            base_seed = trial_config.get("training", {}).get("seed", 0)
            trial_config = set_path(trial_config, "training.seed", base_seed + index)
        checked = check_trial_config(trial_config, point, f"trial {index}")
        planned.append({"index": index, "overrides": point, "config": checked})
    return planned


def read_grid_file(path) -> dict:
    """Reads and checks a grid file (see the module docstring).

    Args:
        path: str. The JSON file.

    Returns:
        The grid file's dict, with defaults filled in.
    """
    from ebgan_keras.run.config import read_json

    try:
        spec = read_json(path, f"grid file {os.fspath(path)!r}")
    except ConfigError as error:
        raise SweepError(str(error)) from None
    unknown = sorted(set(spec) - set(GRID_KEYS))
    if unknown:
        raise SweepError(
            f"grid file {os.fspath(path)!r}: unknown key `{unknown[0]}`; the keys "
            f"are {', '.join(GRID_KEYS)}. Received: {', '.join(unknown)}"
        )
    if "base" not in spec:
        raise SweepError(
            f"grid file {os.fspath(path)!r}: `base` is required (a config name or "
            "path, or a config object). Received: no `base`"
        )
    return {
        "overrides": {},
        "grid": None,
        "trials": None,
        "num_samples": None,
        "seed": 0,
        "evaluation": {},
        **spec,
    }


def evaluation_settings(evaluation) -> dict | None:
    """A sweep's evaluation settings with their defaults; `None` for `False`."""
    if evaluation is False:
        return None
    evaluation = dict(evaluation or {})
    unknown = sorted(set(evaluation) - set(EVALUATION_DEFAULTS))
    if unknown:
        raise SweepError(
            f"unknown evaluation setting `{unknown[0]}`; the settings are "
            f"{', '.join(EVALUATION_DEFAULTS)}. Received: {', '.join(unknown)}"
        )
    return {**EVALUATION_DEFAULTS, **evaluation}


__all__ = [
    "EVALUATION_DEFAULTS",
    "GRID_KEYS",
    "SweepError",
    "check_trial_config",
    "evaluation_settings",
    "expand",
    "grid_point",
    "grid_size",
    "plan",
    "read_grid_file",
    "set_path",
]

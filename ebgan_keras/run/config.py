"""One config schema for every run: the CLI, the zoo recipes and the benchmarks.

A run config is a JSON object, the form of a zoo entry's `config.json`:

```json
{
 "format_version": 1,
 "class": "EBGANPT",
 "model": {"margin": 10.0, "pt_weight": 0.1},
 "generator": {"builder": "ebgan_mlp_generator", "kwargs": {"latent_dim": 64}},
 "discriminator": {"builder": "ebgan_mlp_discriminator", "kwargs": {}},
 "image_shape": null,
 "training": {"data": "mnist", "batch_size": 64, "epochs": 25, "seed": 0}
}
```

- `class`: a model class of the library (any `keras.Model` registered under
  the package `ebgan_keras`, e.g. `"EBGAN"`, `"BEGAN"`, `"GAN"`); `model`: its
  keyword arguments.
- one key per network role of the class (its `network_roles`: `generator`
  and `discriminator`, and `encoder` for BiGAN): a function of
  `ek.networks` and its keyword arguments. The image shape (`image_shape`, or
  `image_size` and `channels`) is filled in from the data where the kwargs
  leave it out.
- `image_shape`: `[H, W, C]`, or `null` to take it from the data.
- `training`: `data` (an `ek.data.load` name or an image folder),
  `data_dir` (`null`: TFDS's default folder), `image_size`, `crop`,
  `batch_size`, `epochs`, `seed`, `steps_per_epoch` (`null`: one pass over
  the data), `learning_rate` (`null`: the model's defaults; a number for both
  optimizers; or `{"discriminator": ..., "generator": ...}`), `optimizer`
  (`null`: the model's defaults; `"adam"` or `"sgd"` for both; or
  `{"discriminator": ..., "generator": ...}`; see `builder.compile_model`),
  `mixed_precision` (`null`: float32; `"auto"`: `mixed_float16` when a GPU
  is present, float32 otherwise; or `"mixed_float16"`, `"mixed_bfloat16"`).
- `evaluation` (zoo entries): reference data, features, samplers.
- `name`, `summary`, `dataset`, `licence`, `paper`, `notes`, `golden_seed`:
  the model card's text (zoo entries).

Built-in configs are data files in `ebgan_keras/configs/` (`ebgan`,
`ebgan_pt`, `began`, `magan`); `load_config` also reads any JSON file by
path (a zoo entry's config by name: `ek.zoo.find_config`). `validate` checks
a config and fills in defaults, with errors that name the key, the expected
type and the received value.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

FORMAT_VERSION = 1
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

_ANY = object()


class ConfigError(ValueError):
    """A run config that does not follow the schema."""


# Each field: (expected type description, check, default). `_ANY` default:
# required. The checks take the value and return True when it is valid.
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive_int(value) -> bool:
    return _is_int(value) and value >= 1


def _is_dict(value) -> bool:
    return isinstance(value, dict)


def _optional(check):
    return lambda value: value is None or check(value)


def _string(value) -> bool:
    return isinstance(value, str) and bool(value)


def _shape(value) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(_positive_int(dim) for dim in value)
    )


def _learning_rate(value) -> bool:
    if value is None:
        return True
    if _is_number(value):
        return value > 0
    return (
        isinstance(value, dict)
        and set(value) == {"discriminator", "generator"}
        and all(_is_number(rate) and rate > 0 for rate in value.values())
    )


OPTIMIZERS = ("adam", "sgd")
#: Values of `training.mixed_precision`.
MIXED_PRECISION = (None, "auto", "mixed_float16", "mixed_bfloat16")


def _optimizer(value) -> bool:
    if value is None or value in OPTIMIZERS:
        return True
    return (
        isinstance(value, dict)
        and set(value) == {"discriminator", "generator"}
        and all(name in OPTIMIZERS for name in value.values())
    )


def _network(value) -> bool:
    return (
        isinstance(value, dict)
        and _string(value.get("builder"))
        and isinstance(value.get("kwargs", {}), dict)
        and set(value) <= {"builder", "kwargs"}
    )


#: The schema of one network: a function of `ek.networks` and its kwargs.
NETWORK_FIELD = ('an object {"builder": NAME, "kwargs": {...}}', _network, _ANY)
#: The roles of a class that names none (`BaseGAN.network_roles`).
DEFAULT_NETWORK_ROLES = ("generator", "discriminator")
#: Network roles the previous schema always held, `null` where the class has
#: no such network (every model but BiGAN has `"encoder": null`). Validated
#: configs keep them, so the recipe hashes recorded in shipped entries'
#: metadata (`recipe_sha256`) still match.
LEGACY_NULL_ROLES = ("encoder",)
_PACKAGE = "ebgan_keras>"

TOP_LEVEL = {
    "format_version": ("the int 1", lambda v: v == FORMAT_VERSION, FORMAT_VERSION),
    "class": ("the name of a model class (e.g. 'EBGANPT')", _string, _ANY),
    "model": ("a JSON object of keyword arguments", _is_dict, {}),
    "image_shape": ("null or [height, width, channels]", _optional(_shape), None),
    "training": ("a JSON object", _is_dict, {}),
    "evaluation": ("null or a JSON object", _optional(_is_dict), None),
    "name": ("a non-empty string", _optional(_string), None),
    "summary": ("a string", _optional(lambda v: isinstance(v, str)), None),
    "dataset": ("a string", _optional(lambda v: isinstance(v, str)), None),
    "licence": ("a string", _optional(lambda v: isinstance(v, str)), None),
    "paper": ("a string", _optional(lambda v: isinstance(v, str)), None),
    "notes": (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
        [],
    ),
    "golden_seed": ("an int", _is_int, 1234),
    # A preset's config (`save_to_preset`) names its class as Keras registers
    # it, as KerasHub's `config.json` does; absent from older entries.
    "registered_name": ("'ebgan_keras>' and the `class`", _string, None),
}

TRAINING = {
    "data": (
        "null or an ek.data.load name (or the path of an image folder)",
        _optional(_string),
        None,
    ),
    "data_dir": ("null or a TFDS data folder", _optional(_string), None),
    "split": ("a split name", _string, "train"),
    "image_size": ("null or a positive int", _optional(_positive_int), None),
    "crop": ("null or a positive int", _optional(_positive_int), None),
    "batch_size": ("a positive int", _positive_int, 64),
    "epochs": ("a positive int", _positive_int, 25),
    "seed": ("an int", _is_int, 0),
    "steps_per_epoch": ("null or a positive int", _optional(_positive_int), None),
    "learning_rate": (
        'null, a positive number, or {"discriminator": x, "generator": y}',
        _learning_rate,
        None,
    ),
    "optimizer": (
        'null, "adam", "sgd", or {"discriminator": "adam"|"sgd", '
        '"generator": "adam"|"sgd"}',
        _optimizer,
        None,
    ),
    "mixed_precision": (
        'null (float32), "auto" (mixed_float16 when a GPU is present, else '
        'float32), "mixed_float16" or "mixed_bfloat16"',
        lambda v: v in MIXED_PRECISION,
        None,
    ),
}

#: Fields of `evaluation` (zoo entries) and their types; defaults are the
#: entries' own.
EVALUATION = {
    "reference": ("an ek.data.load name", _string, _ANY),
    "reference_split": ("a split name", _string, "test"),
    "features": ("a feature extractor name", _string, _ANY),
    "num_samples": ("a positive int", _positive_int, 10000),
    "seed": ("an int", _is_int, 0),
    "feature_size": (
        "null or [height, width]",
        _optional(
            lambda v: (
                isinstance(v, list) and len(v) == 2 and all(_positive_int(d) for d in v)
            )
        ),
        None,
    ),
    "samplers": ("a JSON object {sampler: settings}", _is_dict, {}),
    "ddls_sweep": ("null or a JSON object", _optional(_is_dict), None),
}


def model_classes() -> dict:
    """The model classes a config's `class` may name, by name.

    Returns:
        A dict `{name: class}` of every `keras.Model` with a training step of
        this library (`discriminator_loss` and `generator_loss`) registered
        under the package `ebgan_keras`.
    """
    import keras

    import ebgan_keras.models  # noqa: F401 - registers the library's models

    classes = {}
    for key, value in keras.saving.get_custom_objects().items():
        if (
            key.startswith(_PACKAGE)
            and isinstance(value, type)
            and issubclass(value, keras.Model)
            and hasattr(value, "discriminator_loss")
            and hasattr(value, "generator_loss")
        ):
            classes[key[len(_PACKAGE) :]] = value
    return classes


def model_class(name: str) -> type:
    """The model class of a config's `class`, with an error listing the known ones.

    Args:
        name: str. A class name such as `"EBGANPT"`.

    Returns:
        The class.
    """
    classes = model_classes()
    if name not in classes:
        raise ConfigError(
            f"config `class` must be one of {', '.join(sorted(classes))}. "
            f"Received: class={name!r}"
        )
    return classes[name]


def network_roles(class_name) -> tuple:
    """The network roles of a config's `class` (its `network_roles`).

    Args:
        class_name: the config's `class` (any type).

    Returns:
        A tuple of role names, e.g. `("generator", "discriminator",
        "encoder")` for `"BiGAN"`; `DEFAULT_NETWORK_ROLES` for a name that is
        no model class (`model_class` names the error where the model is
        built).
    """
    cls = model_classes().get(class_name) if isinstance(class_name, str) else None
    return tuple(getattr(cls, "network_roles", DEFAULT_NETWORK_ROLES))


def top_level_fields(roles: tuple) -> dict:
    """The top-level fields of a config whose class has these network roles.

    Args:
        roles: tuple of str. The class's `network_roles`.

    Returns:
        `TOP_LEVEL` with one network field per role (and the
        `LEGACY_NULL_ROLES`), placed after `model` as the previous schema
        ordered them: `{key: (expected, check, default)}`.
    """
    fields = {}
    for key, field in TOP_LEVEL.items():
        fields[key] = field
        if key == "model":
            for role in roles:
                fields[role] = NETWORK_FIELD
            for role in LEGACY_NULL_ROLES:
                fields.setdefault(
                    role,
                    (f"null ({role} is no network of it)", lambda v: v is None, None),
                )
    return fields


def _received(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check_fields(section: dict, fields: dict, where: str, source: str) -> dict:
    if not isinstance(section, dict):
        raise ConfigError(
            f"{source}: `{where or 'the config'}` must be a JSON object. "
            f"Received: {_received(section)}"
        )
    unknown = sorted(set(section) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"{source}: unknown key `{prefix}{unknown[0]}`; the keys of "
            f"`{where or 'the config'}` are {', '.join(sorted(fields))}. "
            f"Received: {', '.join(prefix + key for key in unknown)}"
        )
    result = {}
    for key, (expected, check, default) in fields.items():
        name = f"{where}.{key}" if where else key
        if key not in section:
            if default is _ANY:
                raise ConfigError(
                    f"{source}: `{name}` is required: {expected}. Received: no `{name}`"
                )
            result[key] = copy.deepcopy(default)
            continue
        value = section[key]
        if not check(value):
            raise ConfigError(
                f"{source}: `{name}` must be {expected}. Received: "
                f"{name}={_received(value)}"
            )
        result[key] = copy.deepcopy(value)
    return result


def validate(config: dict, source: str = "config") -> dict:
    """Checks a run config against the schema and fills in its defaults.

    Args:
        config: dict. A run config (see the module docstring).
        source: str. Where the config came from, for error messages.
            Defaults to `"config"`.

    Returns:
        A new dict: the config with every default filled in.

    Raises:
        ConfigError: naming the key, the expected type and the received value.

    Example:

    >>> from ebgan_keras.run import config
    >>> config.validate(config.load_config("ebgan_pt"))["training"]["batch_size"]
    64
    """
    _check_finite(config, "", source)
    roles = network_roles(config.get("class") if isinstance(config, dict) else None)
    result = _check_fields(config, top_level_fields(roles), "", source)
    registered = result.pop("registered_name")
    if registered is not None:
        if registered != f"ebgan_keras>{result['class']}":
            raise ConfigError(
                f"{source}: `registered_name` must be 'ebgan_keras>' and the "
                f"`class` ('ebgan_keras>{result['class']}'). Received: "
                f"registered_name={_received(registered)}"
            )
        result["registered_name"] = registered
    result["training"] = _check_fields(result["training"], TRAINING, "training", source)
    if result["evaluation"] is not None:
        result["evaluation"] = _check_fields(
            result["evaluation"], EVALUATION, "evaluation", source
        )
    for role in roles:
        result[role].setdefault("kwargs", {})
    return result


def _check_finite(value, path: str, source: str) -> None:
    """No NaN or infinity anywhere: JSON has none, and no setting means one."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{source}: `{path or 'config'}` must be a finite number. "
            f"Received: {path or 'config'}={value!r}"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}" if path else str(key), source)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_finite(item, f"{path}[{index}]", source)


def merge(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` merged in, key by key, into nested objects.

    Args:
        base: dict. A config.
        overrides: dict. Values to set; nested dicts are merged, other
            values (lists included) replace.

    Returns:
        A new dict.
    """
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def builtin_names() -> list[str]:
    """The names of the built-in configs (`ebgan_keras/configs/*.json`)."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.json"))


def read_json(path, what: str | None = None) -> dict:
    """Reads a JSON object from a file, with errors that name the file.

    Args:
        path: str or path. The file.
        what: str. How to name the file in errors. Defaults to its path.

    Returns:
        The dict.
    """
    what = what or repr(os.fspath(path))
    if not os.path.isfile(path):
        raise ConfigError(f"{what}: no such file. Received: {os.fspath(path)!r}")
    try:
        with open(path) as handle:
            value = json.load(handle)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{what} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{what} must hold a JSON object. Received: a {type(value).__name__}"
        )
    return value


def load_config(name_or_path) -> dict:
    """A run config by built-in name or JSON file path.

    A zoo entry's config by its name: `ek.zoo.find_config` (the zoo resolves
    its names; this schema knows none).

    Args:
        name_or_path: str or path. A built-in config (`builtin_names()`) or
            the path of a JSON file (a zoo entry's `config.json` or any
            config of this schema).

    Returns:
        The config dict, validated, with defaults filled in.

    Example:

    >>> from ebgan_keras.run import config
    >>> config.load_config("began")["class"]
    'BEGAN'
    """
    text = os.fspath(name_or_path)
    if text in builtin_names():
        return validate(read_json(CONFIG_DIR / f"{text}.json"), f"config {text!r}")
    if os.path.isfile(text) or text.endswith(".json") or os.sep in text:
        return validate(read_json(text), repr(text))
    raise ConfigError(
        f"Unknown config: not a built-in config ({', '.join(builtin_names())}) "
        f"or a JSON file (a zoo entry's: `ek.zoo.find_config`). Received: {text!r}"
    )


__all__ = [
    "ConfigError",
    "FORMAT_VERSION",
    "builtin_names",
    "load_config",
    "merge",
    "model_class",
    "model_classes",
    "network_roles",
    "top_level_fields",
    "read_json",
    "validate",
]

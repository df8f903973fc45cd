"""One builder: a model of the library from a run config (`ebgan_keras.run.config`).

The CLI, the zoo recipes and the benchmarks all build through `build_model`
and `compile_model`. Nothing here knows a model by name: `class` is looked up
among the classes registered for Keras serialization under the package
`ebgan_keras` (every model file registers its class), and the networks among
the functions of `ek.networks`. A new model is one file; its configs work here
as they are.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from collections.abc import Sequence

from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import model_class
from ebgan_keras.run.config import model_classes


def _shape_kwargs(function, kwargs: dict, image_shape: Sequence[int]) -> dict:
    """Fills the image shape into a network builder's kwargs where left out."""
    parameters = inspect.signature(function).parameters
    filled = dict(kwargs)
    if "image_shape" in parameters:
        filled.setdefault("image_shape", list(image_shape))
    else:
        if "image_size" in parameters and "image_size" not in filled:
            if image_shape[0] != image_shape[1]:
                raise ConfigError(
                    f"`{function.__name__}` builds square images only. Received: "
                    f"images of shape {tuple(image_shape)}"
                )
            filled["image_size"] = int(image_shape[0])
        if "channels" in parameters:
            filled.setdefault("channels", int(image_shape[2]))
    return filled


def network_builder(name) -> Callable | None:
    """The function of `ek.networks` a config's `builder` names, or None.

    Args:
        name: the `builder` value of a config (any type).

    Returns:
        The builder function, or None when `name` names none.

    Example:

    >>> network_builder("ebgan_mlp_generator").__name__
    'ebgan_mlp_generator'
    >>> network_builder("nope") is None
    True
    """
    from ebgan_keras import networks

    function = getattr(networks, name, None) if isinstance(name, str) else None
    return function if callable(function) else None


def build_network(spec: dict, role: str, image_shape: Sequence[int] | None = None):
    """A network from its config: a function of `ek.networks` and its kwargs.

    Args:
        spec: dict. `{"builder": NAME, "kwargs": {...}}`.
        role: str. The network's role, e.g. `"generator"` (for error
            messages).
        image_shape: sequence of 3 ints. Filled into the kwargs where they
            leave the image shape out. Defaults to `None` (kwargs as given).

    Returns:
        A `keras.Model`.
    """
    from ebgan_keras import networks

    name = spec.get("builder")
    function = network_builder(name)
    if function is None:
        raise ConfigError(
            f"config `{role}.builder` must name a function of ek.networks "
            f"({', '.join(n for n in networks.__all__ if n[0].islower())}). "
            f"Received: builder={name!r}"
        )
    kwargs = dict(spec.get("kwargs", {}))
    if image_shape is not None:
        kwargs = _shape_kwargs(function, kwargs, image_shape)
    return function(**kwargs)


def build_model(
    config: dict,
    image_shape: Sequence[int] | None = None,
    seed: int | None = None,
):
    """Builds the untrained model of a run config.

    Args:
        config: dict. A validated run config (`ebgan_keras.run.config.validate`).
        image_shape: sequence of 3 ints. The images' shape, e.g. from the
            data. Defaults to the config's `image_shape`.
        seed: int. Seed of the model's latents. Defaults to the config's
            `training.seed`.

    Returns:
        An uncompiled model of the config's class.

    Example:

    ```python
    from ebgan_keras.run import builder
    from ebgan_keras.run import config

    model = builder.build_model(config.load_config("ebgan_pt"), (28, 28, 1))
    ```
    """
    shape = image_shape or config.get("image_shape")
    if shape is None:
        raise ConfigError(
            "the config has no `image_shape` and none was given (it comes from "
            "the training data). Received: image_shape=None"
        )
    shape = tuple(int(dim) for dim in shape)
    cls = model_class(config["class"])
    training = config.get("training", {})
    seed = training.get("seed", 0) if seed is None else seed
    model_kwargs = dict(config.get("model", {}))
    what = config.get("name") or config["class"]
    try:
        networks = {
            role: build_network(config[role], role, shape) for role in cls.network_roles
        }
        model = cls(**networks, seed=seed, **model_kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(
            f"cannot build {what} for images of shape {shape} with the given "
            f"settings: {error}"
        ) from None
    # The run config that built it (its shape and seed filled in): what
    # `save_to_preset` writes as a preset's `config.json`.
    model.run_config = {
        **config,
        "image_shape": list(shape),
        "training": {**training, "seed": seed},
    }
    return model


def _by_role(value) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    return {"discriminator": value, "generator": value}


def _optimizer(kind: str | None, default):
    """The optimizer of one network: the model's default or a named kind."""
    import keras

    if kind is None:
        return default
    rate = float(keras.ops.convert_to_numpy(default.learning_rate))
    if kind == "sgd":
        # Plain SGD, no momentum: the "sgd" arm of the EBGAN paper's grid.
        return keras.optimizers.SGD(rate)
    if isinstance(default, keras.optimizers.Adam):
        return default  # The model's own Adam settings (betas, epsilon).
    return keras.optimizers.Adam(rate, beta_1=0.5)


def compile_model(model, config: dict, **compile_kwargs) -> None:
    """Compiles a model with its defaults and the config's optimizer settings.

    Args:
        model: an uncompiled model of the library.
        config: dict. A validated run config. `training.learning_rate` is
            `None` (the model's defaults), one number (both optimizers) or
            `{"discriminator": x, "generator": y}`; `training.optimizer` is
            `None` (the model's defaults), `"adam"` or `"sgd"` (both), or
            `{"discriminator": ..., "generator": ...}`. `"adam"` keeps the
            model's Adam settings where its default is Adam, else
            `Adam(beta_1=0.5)`; `"sgd"` is plain SGD without momentum. A kind
            given without a learning rate keeps the default's rate.
        **compile_kwargs: further arguments of the model's `compile`
            (`steps_per_execution`, `jit_compile`, ...).
    """
    training = config.get("training", {})
    defaults = model.default_optimizers()
    kinds = _by_role(training.get("optimizer")) or {}
    d_optimizer, g_optimizer = (
        _optimizer(kinds.get(role), default)
        for role, default in zip(("discriminator", "generator"), defaults)
    )
    rates = _by_role(training.get("learning_rate"))
    if rates is not None:
        d_optimizer.learning_rate = rates["discriminator"]
        g_optimizer.learning_rate = rates["generator"]
    model.compile(d_optimizer, g_optimizer, **compile_kwargs)


__all__ = [
    "build_model",
    "build_network",
    "compile_model",
    "model_class",
    "model_classes",
]

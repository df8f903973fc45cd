"""ebgan_keras: energy-based GANs for Keras 3 on TensorFlow, JAX and PyTorch.

`import ebgan_keras` imports the model classes (they register with Keras
serialization, so `keras.saving.load_model("x.keras")` works right after it),
`losses` and `networks`. The heavier submodules (`data`, `metrics`, `plot`,
`samplers`, `zoo`, `callbacks`, `visual_callbacks`) load on first use of
`ek.<name>`, so that the package imports no TensorFlow under JAX or PyTorch
until a `tf.data` pipeline is built.
"""

import importlib
import os
import sys

from ebgan_keras.version import __version__ as __version__

# The public names besides the model classes. The model classes are listed
# once, in `ebgan_keras.models.MODEL_CLASSES`; `__all__` is both.
_PUBLIC = (
    "callbacks",
    "data",
    "export",
    "files",
    "inversion",
    "losses",
    "metrics",
    "models",
    "networks",
    "plot",
    "run",
    "samplers",
    "semi_supervised",
    "sweep",
    "utils",
    "visual_callbacks",
    "zoo",
)

# What `__getattr__` (PEP 562, below) loads on first access when not yet loaded.
# Functions: `ek.export` is `ebgan_keras.run.export.export`, `ek.sweep` is
# `ebgan_keras.run.sweeps.sweep`.
_FUNCTIONS = {"export": "run.export", "sweep": "run.sweeps"}
_SUBMODULES = tuple(name for name in _PUBLIC if name not in _FUNCTIONS)


def _started_by_command_line() -> bool:
    """Whether this process is the `ebgan-keras` command line.

    The console script runs as `.../ebgan-keras` (`ebgan-keras.exe` on
    Windows). `python -m ebgan_keras` imports this package while
    `sys.argv[0]` is still `"-m"` (it becomes the path of `__main__.py` only
    afterwards); `sys.orig_argv` tells which module `-m` runs.
    """
    argv = getattr(sys, "argv", None) or [""]
    program = os.path.basename(argv[0])
    if program in ("ebgan-keras", "ebgan-keras.exe"):
        return True
    if program != "-m":
        return False
    original = getattr(sys, "orig_argv", [])
    for i, arg in enumerate(original[1:], start=1):
        if arg.startswith("-m"):
            module = arg[2:] or (original[i + 1] if i + 1 < len(original) else "")
            return module in ("ebgan_keras", "ebgan_keras.cli")
    return True


def _default_backend() -> None:
    """Without TensorFlow, default `KERAS_BACKEND` to an installed backend.

    Keras's own default is TensorFlow; an install without it (`pip install
    "ebgan-keras[jax]"` or `[torch]`) would fail at `import keras` unless the
    user set a backend. Only when none is set (in the environment, or an
    installed one in `~/.keras/keras.json`, which Keras writes with
    "tensorflow" on first use) and Keras is not yet imported: JAX, else
    PyTorch.
    """
    import importlib.util
    import json

    if os.environ.get("KERAS_BACKEND") or "keras" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is not None:
        return
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    try:
        with open(os.path.join(home, "keras.json")) as file:
            configured = json.load(file).get("backend")
        if configured and importlib.util.find_spec(configured) is not None:
            return
    except (OSError, ValueError, AttributeError, ImportError):
        pass
    for backend in ("jax", "torch"):
        if importlib.util.find_spec(backend) is not None:
            os.environ["KERAS_BACKEND"] = backend
            return


_default_backend()

# The command line must start without Keras: `ebgan-keras --help` and
# `ebgan-keras zoo list` stay fast, and `--backend` can still set
# `KERAS_BACKEND` (and `TF_CPP_MIN_LOG_LEVEL`) before Keras is imported. Its
# process imports this package first (`from ebgan_keras.cli import main`), so
# there nothing is imported here: every name below, the model classes
# included, is resolved by `__getattr__`, and the command line imports
# `ebgan_keras.models` itself once the environment is set. Anywhere else the
# model classes are imported now, so that they are registered with Keras.
_LAZY = _started_by_command_line()

if not _LAZY:
    from ebgan_keras import losses  # noqa: F401 - `ek.losses`, in `__all__`
    from ebgan_keras import models
    from ebgan_keras import networks  # noqa: F401 - `ek.networks`, in `__all__`
    from ebgan_keras.zoo import presets as _presets  # noqa: F401 - `from_preset`

    globals().update({name: getattr(models, name) for name in models.MODEL_CLASSES})
    __all__ = [*models.MODEL_CLASSES, *_PUBLIC]


def _model_classes() -> tuple:
    # The zoo's presets register `from_preset` on the model classes.
    importlib.import_module(f"{__name__}.zoo.presets")
    return importlib.import_module(f"{__name__}.models").MODEL_CLASSES


def __getattr__(name: str):
    if name in _SUBMODULES:
        # The import sets the submodule as an attribute of this package, so
        # later accesses do not come here again.
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        module = importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name == "__all__":  # the command line's process: the models load now
        value = [*_model_classes(), *_PUBLIC]
        globals()[name] = value
        return value
    if name[:1].isupper() and name in _model_classes():
        value = getattr(importlib.import_module(f"{__name__}.models"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    public = globals().get("__all__", _PUBLIC)
    return sorted(set(globals()) | set(public))

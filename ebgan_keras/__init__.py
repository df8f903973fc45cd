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

__version__ = "0.1.0"

__all__ = [
    "BEGAN",
    "EBGAN",
    "EBGANPT",
    "GAN",
    "GLSGAN",
    "MAGAN",
    "WGANGP",
    "BaseGAN",
    "BiGAN",
    "CriticGAN",
    "EnergyGAN",
    "LossSensitiveGAN",
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
]

# What `__getattr__` (PEP 562, below) loads on first access when not yet loaded.
# Functions: `ek.export` is `ebgan_keras.run.export.export`, `ek.sweep` is
# `ebgan_keras.run.sweeps.sweep`.
_FUNCTIONS = {"export": "run.export", "sweep": "run.sweeps"}
_SUBMODULES = tuple(
    name for name in __all__ if name.islower() and name not in _FUNCTIONS
)
_MODEL_CLASSES = tuple(name for name in __all__ if not name.islower())


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
    from ebgan_keras import losses
    from ebgan_keras import models
    from ebgan_keras import networks
    from ebgan_keras.models import BEGAN
    from ebgan_keras.models import EBGAN
    from ebgan_keras.models import EBGANPT
    from ebgan_keras.models import GAN
    from ebgan_keras.models import GLSGAN
    from ebgan_keras.models import MAGAN
    from ebgan_keras.models import WGANGP
    from ebgan_keras.models import BaseGAN
    from ebgan_keras.models import BiGAN
    from ebgan_keras.models import CriticGAN
    from ebgan_keras.models import EnergyGAN
    from ebgan_keras.models import LossSensitiveGAN


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
    if name in _MODEL_CLASSES:
        value = getattr(importlib.import_module(f"{__name__}.models"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

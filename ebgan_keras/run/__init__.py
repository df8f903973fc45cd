"""The run machinery above the core: recipes, the builder, training, sweeps, export.

- `config`: the recipe schema (`load_config`, `validate`, `merge`).
- `builder`: a recipe into a compiled model.
- `training`: the one training driver (run folders, exact resume).
- `sweeps`: hyperparameter sweeps on Ray Tune (`ek.sweep`).
- `distribute`: data parallelism and several processes.
- `export`: a trained model into a SavedModel archive (`ek.export`).

Nothing in the core (`models`, `networks`, `losses`, `samplers`, `metrics`,
`data`, `backend`) imports this package; the zoo and the command line sit on
top of it.
"""

import importlib

_SUBMODULES = ("builder", "config", "distribute", "export", "sweeps", "training")


def __getattr__(name: str):
    # `ek.run.training` and the others load on first use, as the package's
    # own submodules do (PEP 562).
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

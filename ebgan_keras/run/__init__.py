"""The run machinery above the core: recipes, the builder, training, sweeps, export.

- `config`: the recipe schema (`load_config`, `validate`, `merge`).
- `builder`: a recipe into a compiled model.
- `training`: the one training driver (exact resume); `run_folder`: a run
  folder's files, settings check and provenance; `stream`: the run's one
  seeded data stream.
- `sweeps`: hyperparameter sweeps on Ray Tune (`ek.sweep`); `sweep_plan`:
  grids and trials, checked; `sweep_trial`: one trial.
- `distribute`: data parallelism and several processes; `cluster_settings`:
  `TF_CONFIG` and the JAX coordinator, checked.
- `export`: a trained model into a SavedModel archive (`ek.export`).

Nothing in the core (`models`, `networks`, `losses`, `samplers`, `metrics`,
`data`, `backend`) imports this package; the zoo and the command line sit on
top of it.
"""

import importlib

_SUBMODULES = (
    "builder",
    "cluster_settings",
    "config",
    "distribute",
    "export",
    "run_folder",
    "stream",
    "sweep_plan",
    "sweep_trial",
    "sweeps",
    "training",
)


def __getattr__(name: str):
    # `ek.run.training` and the others load on first use, as the package's
    # own submodules do (PEP 562).
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

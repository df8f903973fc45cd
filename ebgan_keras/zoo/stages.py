"""Building a zoo entry from its recipe: train, export, evaluate, card.

`build` runs an entry's `config.json` end to end in stages, each of which
resumes from the run folder after an interruption:

1. train: the one training driver (`ebgan_keras.run.training.train`), exact
   resume, history and wall time written after every epoch;
2. export: generator and discriminator `.weights.h5`, the golden file of fixed
   latents and outputs, the sample grid and curves;
3. evaluate: FID/KID for every sampler of the recipe (each result is kept as
   soon as it is measured);
4. card: `metadata.json` (sha256 of every file, provenance, metrics with
   their protocol) and the `README.md` model card (`ebgan_keras.zoo.card`).

Everything is written under the entry folder `out_dir`; the run folder
defaults to `out_dir/run`. Stage 3 is `ebgan_keras.zoo.evaluation`; the
pictures, `reevaluate` and `rewrite_card` (stages on a trained model) are
`ebgan_keras.zoo.trained`; their names stay importable from here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ebgan_keras import files
from ebgan_keras.run import training as driver
from ebgan_keras.run.config import merge
from ebgan_keras.run.config import validate
from ebgan_keras.samplers.factory import CALIBRATED  # noqa: F401
from ebgan_keras.samplers.factory import compile_options  # noqa: F401 (zoo.recipe)
from ebgan_keras.samplers.factory import has_convolutions  # noqa: F401 (zoo.recipe)
from ebgan_keras.zoo.card import build_command
from ebgan_keras.zoo.card import write_card
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import CURVES_FILE
from ebgan_keras.zoo.entries import GRID_FILE
from ebgan_keras.zoo.entries import entry_dir
from ebgan_keras.zoo.evaluation import EVALUATION_VERSION  # noqa: F401
from ebgan_keras.zoo.evaluation import NUM_CALIBRATION  # noqa: F401
from ebgan_keras.zoo.evaluation import NUM_HELD_OUT  # noqa: F401
from ebgan_keras.zoo.evaluation import _reference_images  # noqa: F401
from ebgan_keras.zoo.evaluation import _with_overrides  # noqa: F401
from ebgan_keras.zoo.evaluation import ddls_sampler  # noqa: F401
from ebgan_keras.zoo.evaluation import ddls_sweep  # noqa: F401
from ebgan_keras.zoo.evaluation import evaluate
from ebgan_keras.zoo.evaluation import to_feature_size  # noqa: F401
from ebgan_keras.zoo.trained import RUN_SUBDIR
from ebgan_keras.zoo.trained import _changes_since_measured  # noqa: F401
from ebgan_keras.zoo.trained import pictures
from ebgan_keras.zoo.trained import read_config
from ebgan_keras.zoo.trained import reevaluate  # noqa: F401
from ebgan_keras.zoo.trained import rewrite_card  # noqa: F401
from ebgan_keras.zoo.weights import golden_outputs  # noqa: F401 - ek.zoo.recipe
from ebgan_keras.zoo.weights import write_networks_and_golden


def train(
    config: dict,
    run_dir: str,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    data: str | None = None,
    verbose: int = 2,
    data_dir: str | None = None,
):
    """Stage 1: trains the recipe's model in `run_dir` with the training driver.

    Args:
        config: dict. The entry's config.
        run_dir: str. Run folder; rerun to resume.
        epochs: int. Overrides the recipe's epochs (to shrink it in tests).
        steps_per_epoch: int. Overrides one pass over the data.
        data: str. Overrides the recipe's data set name (or an image folder).
        verbose: int. Keras `fit` verbosity. Defaults to `2`.
        data_dir: str. The TFDS data folder of the recipe's data set.

    Returns:
        The trained model, computing in float32 (a model trained under mixed
        precision is reloaded from `run_dir` in float32, as `ek.zoo.load`
        builds it, so its golden outputs and metrics are those of the
        entry).
    """
    run = driver.resolve_config(
        config,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        data=data,
        data_dir=data_dir,
    )
    from ebgan_keras.zoo.convergence_monitor import monitor as curve_monitor

    monitor = curve_monitor(run, run_dir)
    callbacks = [monitor] if monitor is not None else []
    model = driver.train(run, run_dir, verbose=verbose, callbacks=callbacks)
    return _in_float32(model, run, run_dir)


def _in_float32(model, config: dict, run_dir: str):
    networks = (model.generator, model.discriminator)
    if all(network.compute_dtype == "float32" for network in networks):
        return model
    import keras

    from ebgan_keras.run.builder import build_model

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = build_model(config, tuple(model.image_shape))
    finally:
        keras.config.set_dtype_policy(policy)
    for role, network in model.networks().items():
        getattr(copy, role).set_weights(network.get_weights())

    def state(gan) -> dict:
        # Model state outside the networks (BEGAN's `k`, MAGAN's margin).
        inside = {id(v) for net in gan.networks().values() for v in net.variables}
        return {v.path: v for v in gan.non_trainable_variables if id(v) not in inside}

    trained = state(model)
    for path, variable in state(copy).items():
        if path in trained:
            variable.assign(trained[path])
    return copy


# ----------------------------------------------------------------------
# Stage 2: export weights, golden outputs, pictures
# ----------------------------------------------------------------------
def export(model, config: dict, run_dir: str, out_dir: str) -> None:
    """Stage 2: writes weights, golden file, sample grid and curves to `out_dir`."""
    from ebgan_keras import plot

    os.makedirs(out_dir, exist_ok=True)
    write_networks_and_golden(model, out_dir, config.get("golden_seed", 1234))
    grid_latents = model.sample_latents(64, seed=config["training"].get("seed", 0))
    plot.grid(model.generate(grid_latents), os.path.join(out_dir, GRID_FILE))
    history = files.read_json(os.path.join(run_dir, driver.HISTORY_FILE), {})
    if history:
        plot.history(history, os.path.join(out_dir, CURVES_FILE))
    files.write_json(os.path.join(out_dir, CONFIG_FILE), config)


# ----------------------------------------------------------------------


# ----------------------------------------------------------------------
# Stage 3: evaluation
# ----------------------------------------------------------------------


# ----------------------------------------------------------------------
# All stages
# ----------------------------------------------------------------------
def run_recipe(
    config: dict,
    out_dir: str,
    run_dir: str,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    data: str | None = None,
    num_samples: int | None = None,
    reference: str | None = None,
    num_reference: int | None = None,
    sampler_names: Sequence[str] | None = None,
    sampler_settings: dict | None = None,
    verbose: int = 2,
    data_dir: str | None = None,
    reference_split: str | None = None,
    features=None,
    recipe_overrides: dict | None = None,
) -> dict:
    """Runs a recipe end to end: train, export, evaluate, card.

    Every stage resumes from `run_dir`: run the same call again after an
    interruption. The overrides shrink a recipe (tests, smoke runs); the
    shipped entries were built without them.

    Args:
        config: dict. The entry's config.
        out_dir: str. Entry folder to write.
        run_dir: str. Run folder (checkpoints, logs).
        epochs: int. Overrides the recipe's epochs.
        steps_per_epoch: int. Overrides one pass over the data per epoch.
        data: str. Overrides the training data set (a name or an image
            folder).
        num_samples: int. Overrides the generated images per metric.
        reference: str. Overrides the reference data set. Defaults to `data`
            when the recipe scores against its training data set.
        num_reference: int. Uses only this many reference images.
        sampler_names: sequence of str. Overrides which samplers are measured.
        sampler_settings: dict. Overrides of sampler settings, see `evaluate`.
        verbose: int. Keras `fit` verbosity. Defaults to `2`.
        data_dir: str. The TFDS data folder (training and reference data).
        reference_split: str. Overrides the reference split.
        features: str, `keras.Model` or `FeatureExtractor`. Overrides the
            feature extractor of the metrics.
        recipe_overrides: dict. A partial config merged into the recipe
            (`ek.run.config.merge`) before anything runs, e.g. smaller networks
            or batch for a smoke run: `{"generator": {"kwargs": {"filters":
            8}}, "training": {"batch_size": 8}}`. The entry's `config.json`
            is the merged recipe, so that its weights load.

    Returns:
        The entry's metadata dict.
    """
    config = validate(merge(config, recipe_overrides or {}), "recipe")
    reference = _reference_of(config, reference, data)
    files.check_writable(out_dir)
    model = train(config, run_dir, epochs, steps_per_epoch, data, verbose, data_dir)
    export(model, config, run_dir, out_dir)
    results = evaluate(
        model,
        config,
        run_dir,
        num_samples,
        reference,
        num_reference,
        sampler_names,
        sampler_settings,
        reference_split=reference_split,
        features=features,
        data_dir=data_dir,
    )
    pictures(model, config, results, out_dir)
    return write_card(
        model,
        config,
        run_dir,
        out_dir,
        results,
        command=build_command(config["name"], data=data, data_dir=data_dir),
    )


def _reference_of(config: dict, reference: str | None, data: str | None):
    """The reference data set of a build: a recipe that trains and scores on
    one data set keeps doing so when its data is given elsewhere (e.g.
    CelebA as an image folder)."""
    if (
        reference is None
        and config["evaluation"]["reference"] == (config["training"]["data"])
    ):
        return data
    return reference


def build(
    name: str,
    out_dir: str | None = None,
    run_dir: str | None = None,
    **overrides,
) -> dict:
    """Runs an entry's recipe end to end: data, training, evaluation, card.

    Resumes from `run_dir` when interrupted (run the same call again). Only
    `out_dir` is written to (the run folder defaults to `out_dir/run`).

    Args:
        name: str. Entry name or entry folder (its `config.json` is the
            recipe).
        out_dir: str. Entry folder to write. Defaults to `zoo_builds/<name>`.
        run_dir: str. Run folder of checkpoints and logs. Defaults to
            `<out_dir>/run`.
        **overrides: keyword arguments of `run_recipe`: where the data is
            (`data`, a data set name or an image folder such as CelebA's
            `img_align_celeba`; `data_dir`, a TFDS data folder; `reference`,
            `reference_split`), and what shrinks the recipe (`epochs`,
            `steps_per_epoch`, `num_samples`, `num_reference`,
            `sampler_names`, `sampler_settings`, `features`,
            `recipe_overrides`).

    Returns:
        The metadata of the built entry.

    Example:

    ```python
    ek.zoo.build("ebgan_pt_mnist", out_dir="my_zoo/ebgan_pt_mnist")
    ek.zoo.build("began_celeba", data="/data/celeba/img_align_celeba",
                 reference="/data/celeba/img_align_celeba")
    ```
    """
    config = read_config(name)
    entry = config.get("name") or entry_dir(name).name
    out_dir = out_dir or os.path.join("zoo_builds", entry)
    run_dir = run_dir or os.path.join(out_dir, RUN_SUBDIR)
    return run_recipe(config, out_dir, run_dir, **overrides)

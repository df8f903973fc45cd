"""Building a zoo entry from its recipe: train, export, evaluate, card.

`build` runs an entry's `config.json` end to end in stages, each of which
resumes from the run folder after an interruption:

1. train: the one training driver (`ebgan_keras.training.train`), exact
   resume, history and wall time written after every epoch;
2. export: generator and discriminator `.weights.h5`, the golden file of fixed
   latents and outputs, the sample grid and curves;
3. evaluate: FID/KID for every sampler of the recipe (each result is kept as
   soon as it is measured);
4. card: `metadata.json` (sha256 of every file, provenance, metrics with
   their protocol) and the `README.md` model card (`ebgan_keras.zoo.card`).

Everything is written under the entry folder `out_dir`; the run folder
defaults to `out_dir/run`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

import numpy as np

from ebgan_keras import files
from ebgan_keras import training as driver
from ebgan_keras.config import merge
from ebgan_keras.config import validate
from ebgan_keras.utils import prior_latents
from ebgan_keras.zoo.card import build_command
from ebgan_keras.zoo.card import write_card
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import CURVES_FILE
from ebgan_keras.zoo.entries import DISCRIMINATOR_FILE
from ebgan_keras.zoo.entries import ENCODER_FILE
from ebgan_keras.zoo.entries import GENERATOR_FILE
from ebgan_keras.zoo.entries import GOLDEN_FILE
from ebgan_keras.zoo.entries import GOLDEN_SAMPLES
from ebgan_keras.zoo.entries import GRID_FILE
from ebgan_keras.zoo.entries import entry_dir

RUN_SUBDIR = "run"


def read_config(name: str) -> dict:
    """The recipe (`config.json`) of an entry, by name or entry folder, validated.

    Args:
        name: str. Entry name or entry folder.

    Returns:
        The config dict, with the schema's defaults filled in.

    Example:

    >>> from ebgan_keras.zoo import stages
    >>> stages.read_config("ebgan_pt_mnist")["class"]
    'EBGANPT'
    """
    folder = entry_dir(name)
    return validate(files.read_json(folder / CONFIG_FILE), f"zoo entry {folder.name!r}")


def has_convolutions(model) -> bool:
    """Whether the generator or discriminator has convolution layers."""
    return any(
        "Conv" in type(layer).__name__
        for network in (model.generator, model.discriminator)
        for layer in network._flatten_layers(include_self=False)
    )


def compile_options(model) -> dict:
    """DDLS options for this backend: no XLA for conv nets on TensorFlow.

    The samplers compile with XLA by default; XLA on CPU computes convolution
    gradients on a slow path (measured on the BEGAN 32x32 nets: a DDLS step 8x
    slower than TensorFlow without XLA), so the recipes sample convolutional
    models on TensorFlow as `tf.function` graphs without XLA.
    """
    from ebgan_keras import backend

    if backend.XLA_SLOW_CONVOLUTIONS and has_convolutions(model):
        return {"jit_compile": False}
    return {}


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
    model = driver.train(run, run_dir, verbose=verbose)
    return _in_float32(model, run, run_dir)


def _in_float32(model, config: dict, run_dir: str):
    networks = (model.generator, model.discriminator)
    if all(network.compute_dtype == "float32" for network in networks):
        return model
    import keras

    from ebgan_keras.builder import build_model

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = build_model(config, tuple(model.image_shape))
    finally:
        keras.config.set_dtype_policy(policy)
    names = [
        n for n in ("generator", "discriminator", "encoder") if getattr(model, n, None)
    ]
    for name in names:
        getattr(copy, name).set_weights(getattr(model, name).get_weights())

    def state(gan) -> dict:
        # Model state outside the networks (BEGAN's `k`, MAGAN's margin).
        inside = {id(v) for name in names for v in getattr(gan, name).variables}
        return {v.path: v for v in gan.non_trainable_variables if id(v) not in inside}

    trained = state(model)
    for path, variable in state(copy).items():
        if path in trained:
            variable.assign(trained[path])
    return copy


# ----------------------------------------------------------------------
# Stage 2: export weights, golden outputs, pictures
# ----------------------------------------------------------------------
def golden_outputs(model, latents: np.ndarray) -> dict:
    """The golden arrays of a model: images and energies of fixed latents."""
    images = model.generate(latents)
    energies = model.energy(images)
    return {"latents": latents, "images": images, "energies": energies}


def export(model, config: dict, run_dir: str, out_dir: str) -> None:
    """Stage 2: writes weights, golden file, sample grid and curves to `out_dir`."""
    from ebgan_keras import plot

    os.makedirs(out_dir, exist_ok=True)
    networks = [
        (model.generator, GENERATOR_FILE),
        (model.discriminator, DISCRIMINATOR_FILE),
    ]
    if getattr(model, "encoder", None) is not None:  # BiGAN
        networks.append((model.encoder, ENCODER_FILE))
    for network, name in networks:
        files.atomic_write(os.path.join(out_dir, name), network.save_weights)
    latents = prior_latents(
        model.latent_distribution,
        GOLDEN_SAMPLES,
        model.latent_dim,
        config.get("golden_seed", 1234),
    )
    golden = golden_outputs(model, latents)
    files.atomic_write(
        os.path.join(out_dir, GOLDEN_FILE), lambda path: np.savez(path, **golden)
    )
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
def _reference_images(
    config: dict,
    reference: str | None,
    limit: int | None,
    split: str | None = None,
    data_dir: str | None = None,
):
    from ebgan_keras import data

    evaluation = config["evaluation"]
    training = config["training"]
    dataset = data.load(
        reference or evaluation["reference"],
        split=split or evaluation.get("reference_split", "test"),
        data_dir=data_dir or training.get("data_dir"),
        batch_size=500,
        shuffle=False,
        drop_remainder=False,
        image_size=training.get("image_size"),
        crop=training.get("crop"),
        channels=config["image_shape"][2],
    )
    images = np.concatenate([np.asarray(batch) for batch in dataset], axis=0)
    return images[:limit] if limit else images


def to_feature_size(images: np.ndarray, size: Sequence[int] | None) -> np.ndarray:
    """Resizes images bilinearly (antialiased) to the feature extractor's size."""
    if size is None or tuple(images.shape[1:3]) == tuple(size):
        return images
    from keras import ops

    resized = ops.image.resize(
        images, tuple(size), interpolation="bilinear", antialias=True
    )
    return np.clip(ops.convert_to_numpy(resized), -1.0, 1.0)


def _make_sampler(name: str, settings: dict, model, real: np.ndarray, seed: int):
    from ebgan_keras import samplers

    settings = dict(settings)
    if name == "rejection":
        return samplers.RejectionSampler.calibrate(model, real, seed=seed, **settings)
    if name == "metropolis_hastings":
        return samplers.MetropolisHastings.calibrate(model, real, seed=seed, **settings)
    return samplers.get({"class_name": name, "config": {**settings, "seed": seed}})


def evaluate(
    model,
    config: dict,
    run_dir: str,
    num_samples: int | None = None,
    reference: str | None = None,
    num_reference: int | None = None,
    sampler_names: Sequence[str] | None = None,
    sampler_settings: dict | None = None,
    reference_split: str | None = None,
    features=None,
    data_dir: str | None = None,
) -> dict:
    """Stage 3: FID/KID of every sampler of the recipe, kept in `run_dir/eval.json`.

    Args:
        model: the trained model.
        config: dict. The entry's config.
        run_dir: str. Run folder; results measured before are not re-measured.
        num_samples: int. Overrides the recipe's number of generated images.
        reference: str. Overrides the reference data set name.
        num_reference: int. Use only this many reference images.
        sampler_names: sequence of str. Overrides which samplers are measured.
        sampler_settings: dict. Overrides of sampler settings by sampler name
            (e.g. `{"ddls": {"num_steps": 2}}`), and `"ddls_sweep"` overrides
            of the step-size sweep (to shrink a recipe).
        reference_split: str. Overrides the reference split (e.g. a slice
            of an image folder without a partition file).
        features: str, `keras.Model` or `ek.metrics.FeatureExtractor`.
            Overrides the recipe's feature extractor (e.g. an offline one
            where InceptionV3's weights cannot be downloaded; the protocol
            records which).
        data_dir: str. The TFDS data folder of the reference (and of the
            calibration images). Defaults to the recipe's `training.data_dir`.

    Returns:
        A dict `{sampler: {"fid", "kid", "kid_std", "seconds_per_1000",
        "sampler", "protocol"}}`.
    """
    from ebgan_keras import metrics

    evaluation = _with_overrides(config["evaluation"], sampler_settings or {})
    num_samples = num_samples or evaluation["num_samples"]
    features = features or evaluation["features"]
    split = reference_split or evaluation.get("reference_split", "test")
    path = os.path.join(run_dir, "eval.json")
    results = files.read_json(path, {})
    features_name = features if isinstance(features, str) else features.name
    key = (
        f"{num_samples}:{reference or evaluation['reference']}:{split}:"
        f"{num_reference}:{features_name}"
    )
    if results.get("_key") != key:
        results = {"_key": key}
    real = _reference_images(config, reference, num_reference, split, data_dir)
    feature_size = evaluation.get("feature_size")
    reference_features = to_feature_size(real, feature_size)
    seed = evaluation.get("seed", 0)
    names = sampler_names or list(evaluation["samplers"])

    def score(images, count: int):
        # Generators without a final tanh (BEGAN's) may step outside [-1, 1]:
        # scored as the images they show, clipped to the pixel range.
        images = np.clip(np.asarray(images), -1.0, 1.0)
        return metrics.evaluate(
            to_feature_size(images, feature_size),
            reference=reference_features,
            metrics=("fid", "kid"),
            features=features,
            seed=seed,
            reference_name=reference or evaluation["reference"],
            reference_split=split,
            kid_subset_size=min(1000, count),
        )

    sweep = evaluation.get("ddls_sweep")
    if "ddls" in names and sweep and "_ddls_sweep" not in results:
        results["_ddls_sweep"] = ddls_sweep(
            model,
            {**evaluation["samplers"]["ddls"], **compile_options(model)},
            sweep,
            score,
            num_samples,
        )
        files.write_json(path, results)
    calibration = None
    for name in names:
        if name in results:
            continue
        settings = dict(evaluation["samplers"].get(name, {}))
        if name == "ddls":
            settings.update(compile_options(model))
            if "_ddls_sweep" in results:
                settings["step_size"] = results["_ddls_sweep"]["best_step_size"]
        if name in ("rejection", "metropolis_hastings") and calibration is None:
            # The energy calibration needs real images other than the
            # evaluation reference: training images (stated in the card).
            options = {"data_dir": data_dir} if data_dir else {}
            data = driver.load_training_data(
                config, reference, batch_size=500, **options
            )
            calibration = np.concatenate(
                [np.asarray(batch) for batch in data.take(4)], axis=0
            )[:2000]
        sampler = _make_sampler(name, settings, model, calibration, seed)
        start = time.perf_counter()
        images, _ = sampler.sample(model, num_samples)
        seconds = time.perf_counter() - start
        report = score(images, num_samples)
        kid_values = dict(report["kid"].values)
        results[name] = {
            "fid": float(report["fid"].value),
            "kid": float(kid_values.pop("kid")),
            "kid_std": float(next(iter(kid_values.values()), float("nan"))),
            "seconds_per_1000": 1000.0 * seconds / num_samples,
            "num_samples": num_samples,
            "sampler": sampler.get_config() | {"name": name},
            "report": report.to_dict(),
        }
        files.write_json(path, results)
    measured = {name: results[name] for name in names}
    if "_ddls_sweep" in results:
        measured["_ddls_sweep"] = results["_ddls_sweep"]
    return measured


def _with_overrides(evaluation: dict, overrides: dict) -> dict:
    evaluation = json.loads(json.dumps(evaluation))
    for name, settings in overrides.items():
        if name == "ddls_sweep":
            # Refines a recipe's sweep; a recipe without one (null) stays without.
            if evaluation.get("ddls_sweep"):
                evaluation["ddls_sweep"].update(settings)
        elif name in evaluation["samplers"]:
            evaluation["samplers"][name].update(settings)
    return evaluation


def ddls_sweep(model, settings: dict, sweep: dict, score, num_samples: int) -> dict:
    """Chooses DDLS's step size on a small sample with its own seed.

    Args:
        model: the trained model.
        settings: dict. DDLS settings other than `step_size`.
        sweep: dict. `step_size` (list of floats), `num_samples`, `seed`.
        score: callable `(images, count) -> EvaluationReport`.
        num_samples: int. Generated images of the final evaluation (the sweep
            uses at most this many).

    Returns:
        A dict with the FID of plain sampling and of every step size on the
        sweep's sample, and `best_step_size`.
    """
    from ebgan_keras import samplers

    count = min(int(sweep.get("num_samples", 2000)), num_samples)
    seed = int(sweep.get("seed", 1))
    prior = samplers.get({"class_name": "prior", "config": {"seed": seed}})
    rows = {"prior": float(score(prior.sample(model, count)[0], count)["fid"].value)}
    for step_size in sweep["step_size"]:
        sampler = samplers.DDLS(**{**settings, "step_size": step_size, "seed": seed})
        fid = score(sampler.sample(model, count)[0], count)["fid"].value
        rows[f"{step_size:g}"] = float(fid)
    best = min(sweep["step_size"], key=lambda size: rows[f"{size:g}"])
    return {
        "num_samples": count,
        "seed": seed,
        "fid": rows,
        "best_step_size": float(best),
    }


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
            (`ek.config.merge`) before anything runs, e.g. smaller networks
            or batch for a smoke run: `{"generator": {"kwargs": {"filters":
            8}}, "training": {"batch_size": 8}}`. The entry's `config.json`
            is the merged recipe, so that its weights load.

    Returns:
        The entry's metadata dict.
    """
    config = validate(merge(config, recipe_overrides or {}), "recipe")
    scores_on_training_data = (
        config["evaluation"]["reference"] == config["training"]["data"]
    )
    if reference is None and scores_on_training_data:
        # A recipe that trains and scores on one data set keeps doing so when
        # its data is given elsewhere (e.g. CelebA as an image folder).
        reference = data
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
    return write_card(
        model,
        config,
        run_dir,
        out_dir,
        results,
        command=build_command(config["name"], data=data, data_dir=data_dir),
    )


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

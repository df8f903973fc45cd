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
defaults to `out_dir/run`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

import numpy as np

from ebgan_keras import files
from ebgan_keras.run import training as driver
from ebgan_keras.run.config import merge
from ebgan_keras.run.config import validate
from ebgan_keras.samplers.factory import CALIBRATED
from ebgan_keras.samplers.factory import compile_options
from ebgan_keras.samplers.factory import has_convolutions  # noqa: F401 (zoo.recipe)
from ebgan_keras.utils import prior_latents
from ebgan_keras.zoo.card import build_command
from ebgan_keras.zoo.card import write_card
from ebgan_keras.zoo.entries import CHAINS_FILE
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import CURVES_FILE
from ebgan_keras.zoo.entries import DISCRIMINATOR_FILE
from ebgan_keras.zoo.entries import ENCODER_FILE
from ebgan_keras.zoo.entries import GENERATOR_FILE
from ebgan_keras.zoo.entries import GOLDEN_FILE
from ebgan_keras.zoo.entries import GOLDEN_SAMPLES
from ebgan_keras.zoo.entries import GRID_FILE
from ebgan_keras.zoo.entries import INTERPOLATION_FILE
from ebgan_keras.zoo.entries import RECONSTRUCTIONS_FILE
from ebgan_keras.zoo.entries import entry_dir

RUN_SUBDIR = "run"
# Real images that calibrate the energy (rejection, MH, calibrated DDLS): the
# first of the training split, as `--calibration-split train` in the CLI.
NUM_CALIBRATION = 2000
# Held-out real images for choosing DDLS's settings and for the floor: the
# first of the training split, never the test split that the card reports.
NUM_HELD_OUT = 10000
# Bumped when what `evaluate` measures changes, so old results are re-measured.
EVALUATION_VERSION = 2


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

    from ebgan_keras.run.builder import build_model

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
    """The first `limit` images of a split (the reference split by default)."""
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
    from ebgan_keras.metrics.evaluation import _collect_images

    return _collect_images(dataset, limit or None, "reference")


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
    from ebgan_keras.samplers import factory

    return factory.make_sampler(
        name, settings, model=model, seed=seed, real_images=real, fallback=True
    )


def ddls_sampler(model, settings: dict, real: np.ndarray | None, seed: int):
    """The recipe's DDLS; a `"calibrated"` temperature is fitted on `real`.

    An energy that does not rank real images below generated ones (a
    calibration slope `<= 0`, e.g. after a few training steps) has no
    calibrated temperature: the sampler then runs at temperature 1 and a
    warning says so (the card's settings show the temperature used).

    Args:
        model: the trained model.
        settings: dict. DDLS arguments; `temperature` may be `"calibrated"`.
        real: array. Real images for the calibration (when calibrated).
        seed: int. Seed of the calibration and of the sampler.

    Returns:
        An `ek.samplers.DDLS` (`ek.samplers.factory.make_sampler`).
    """
    return _make_sampler("ddls", settings, model, real, seed)


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
    """Stage 3: FID/KID/precision/recall of every sampler, kept in `run_dir/eval.json`.

    Three sets of real images, none used twice for the same purpose: the
    reference split (the test split) that every reported number is measured
    against; the first `NUM_CALIBRATION` training images, on which rejection,
    Metropolis-Hastings and a `"calibrated"` DDLS temperature fit the energy's
    calibration; and the first `NUM_HELD_OUT` training images, against which
    DDLS's step size and number of steps are chosen (`ddls_sweep`) and which
    give the floor (what real images score under the entry's own protocol:
    the same resize path as its samples).

    Args:
        model: the trained model.
        config: dict. The entry's config.
        run_dir: str. Run folder; results measured before with the same
            settings are not re-measured (a sampler whose settings, or
            DDLS whose sweep, changed since is).
        num_samples: int. Overrides the recipe's number of generated images.
        reference: str. Overrides the reference data set name.
        num_reference: int. Use only this many reference images (and at most
            this many held-out and calibration images).
        sampler_names: sequence of str. Overrides which samplers are measured.
        sampler_settings: dict. Overrides of sampler settings by sampler name
            (e.g. `{"ddls": {"num_steps": 2}}`), and `"ddls_sweep"` overrides
            of the DDLS sweep (to shrink a recipe).
        reference_split: str. Overrides the reference split (e.g. a slice
            of an image folder without a partition file).
        features: str, `keras.Model` or `ek.metrics.FeatureExtractor`.
            Overrides the recipe's feature extractor (e.g. an offline one
            where InceptionV3's weights cannot be downloaded; the protocol
            records which).
        data_dir: str. The TFDS data folder of the reference (and of the
            calibration and held-out images). Defaults to the recipe's
            `training.data_dir`.

    Returns:
        A dict `{sampler: {"fid", "kid", "kid_std", "precision", "recall",
        "seconds_per_1000", "sampler", "report"}}`, and `"_floor"` and
        `"_ddls_sweep"` (when the recipe sweeps).
    """
    from ebgan_keras import metrics

    evaluation = _with_overrides(config["evaluation"], sampler_settings or {})
    num_samples = num_samples or evaluation["num_samples"]
    features = features or evaluation["features"]
    reference_split = reference_split or evaluation.get("reference_split", "test")
    path = os.path.join(run_dir, "eval.json")
    results = files.read_json(path, {})
    features_name = features if isinstance(features, str) else features.name
    key = (
        f"v{EVALUATION_VERSION}:{num_samples}:{reference or evaluation['reference']}"
        f":{reference_split}:{num_reference}:{features_name}"
    )
    if results.get("_key") != key:
        results = {"_key": key}
    feature_size = evaluation.get("feature_size")
    seed = evaluation.get("seed", 0)
    names = sampler_names or list(evaluation["samplers"])
    scorers = {}

    def score(images, count: int, split: str | None = None, pr: bool = True):
        """The metrics of `images` against the reference (or `split`) images."""
        split = split or reference_split
        if split not in scorers:
            limit = num_reference
            if split != reference_split:
                limit = min(num_reference or NUM_HELD_OUT, NUM_HELD_OUT)
            real = _reference_images(config, reference, limit, split, data_dir)
            scorers[split] = to_feature_size(real, feature_size)
        # Generators without a final tanh (BEGAN's) may step outside [-1, 1]:
        # scored as the images they show, clipped to the pixel range.
        images = np.clip(np.asarray(images), -1.0, 1.0)
        return metrics.evaluate(
            to_feature_size(images, feature_size),
            reference=scorers[split],
            metrics=("fid", "kid", "precision_recall") if pr else ("fid",),
            features=features,
            seed=seed,
            reference_name=reference or evaluation["reference"],
            reference_split=split,
            kid_subset_size=min(1000, count),
        )

    calibration = None

    def calibration_images():
        nonlocal calibration
        if calibration is None:
            limit = min(num_reference or NUM_CALIBRATION, NUM_CALIBRATION)
            calibration = _reference_images(config, reference, limit, "train", data_dir)
        return calibration

    if "_floor" not in results:
        count = min(num_reference or num_samples, num_samples)
        real = _reference_images(config, reference, count, "train", data_dir)
        results["_floor"] = _summary(score(real, len(real))) | {
            "num_images": len(real),
            "split": "train",
        }
        files.write_json(path, results)
    sweep = evaluation.get("ddls_sweep")
    ddls_settings = {**evaluation["samplers"].get("ddls", {}), **compile_options(model)}
    # A result measured with other settings (a sampler's settings, or the
    # sweep that chose DDLS's, changed since) is stale and measured again.
    requested = {name: evaluation["samplers"].get(name, {}) for name in names}
    if "ddls" in requested:
        requested["ddls"] = {"settings": requested["ddls"], "sweep": sweep}
    requested = json.loads(json.dumps(requested | {"_ddls_sweep": sweep}))
    recorded = results.setdefault("_requested", {})
    for name, settings in requested.items():
        if recorded.get(name, "unrecorded") != settings:
            results.pop(name, None)
    if "ddls" in names and sweep and "_ddls_sweep" not in results:
        # Each setting's FID is kept as it is measured, so that a sweep killed
        # half-way resumes where it stopped (a 12-setting sweep of a 32x32
        # entry takes over half an hour on a CPU).
        partial = results.get("_ddls_sweep_partial", {})
        if partial.get("sweep") != requested["_ddls_sweep"]:
            partial = {"sweep": requested["_ddls_sweep"], "fid": {}}

        def keep(rows: dict) -> None:
            results["_ddls_sweep_partial"] = partial | {"fid": dict(rows)}
            files.write_json(path, results)

        results["_ddls_sweep"] = ddls_sweep(
            model,
            ddls_settings,
            sweep,
            lambda images, count: score(images, count, split="train", pr=False),
            num_samples,
            calibration_images()
            if ddls_settings.get("temperature") == CALIBRATED
            else None,
            measured=partial["fid"],
            on_measured=keep,
        )
        results.pop("_ddls_sweep_partial", None)
        recorded["_ddls_sweep"] = requested["_ddls_sweep"]
        files.write_json(path, results)
    for name in names:
        if name in results:
            continue
        settings = dict(evaluation["samplers"].get(name, {}))
        if name == "ddls":
            settings = dict(ddls_settings)
            if "_ddls_sweep" in results:
                settings.update(results["_ddls_sweep"]["best"])
        needs_real = name in ("rejection", "metropolis_hastings") or (
            settings.get("temperature") == CALIBRATED
        )
        sampler = _make_sampler(
            name, settings, model, calibration_images() if needs_real else None, seed
        )
        start = time.perf_counter()
        images, _ = sampler.sample(model, num_samples)
        seconds = time.perf_counter() - start
        report = score(images, num_samples)
        results[name] = _summary(report) | {
            "seconds_per_1000": 1000.0 * seconds / num_samples,
            "num_samples": num_samples,
            "sampler": sampler.get_config() | {"name": name},
            "report": report.to_dict(),
        }
        recorded[name] = requested[name]
        files.write_json(path, results)
    measured = {name: results[name] for name in names}
    for extra in ("_ddls_sweep", "_floor"):
        if extra in results:
            measured[extra] = results[extra]
    return measured


def _summary(report) -> dict:
    """FID, KID (and its spread), precision and recall of a report, as floats."""
    kid_values = dict(report["kid"].values)
    summary = {
        "fid": float(report["fid"].value),
        "kid": float(kid_values.pop("kid")),
        "kid_std": float(next(iter(kid_values.values()), float("nan"))),
    }
    if "precision_recall" in report:
        values = report["precision_recall"].values
        summary |= {
            "precision": float(values["precision"]),
            "recall": float(values["recall"]),
        }
    return summary


def pictures(model, config: dict, results: dict, out_dir: str) -> None:
    """Stage 3b: interpolations, reconstructions and a GIF of DDLS's chains.

    `interpolation.png`: 8 rows of 10 images, each row a spherical path
    between two latents. `reconstructions.png`, for a model with an encoder
    (`ek.BiGAN`): the first 32 reference images, each followed by `G(E(x))`.
    `ddls_chains.gif`: 16 chains of the card's DDLS (its measured settings:
    calibrated temperature, chosen step size and steps) moving through latent
    space, about 20 frames; only for a recipe with DDLS.

    Args:
        model: the trained model.
        config: dict. The entry's config.
        results: dict. What `evaluate` measured.
        out_dir: str. Entry folder.
    """
    from ebgan_keras import plot
    from ebgan_keras.samplers import factory

    seed = config["evaluation"].get("seed", 0)
    files.atomic_write(
        os.path.join(out_dir, INTERPOLATION_FILE),
        lambda path: plot.interpolation(model, path, seed=seed),
    )
    if getattr(model, "encoder", None) is not None and hasattr(model, "reconstruct"):
        real = _reference_images(config, None, 32)
        rebuilt = np.asarray(model.reconstruct(real))
        files.atomic_write(
            os.path.join(out_dir, RECONSTRUCTIONS_FILE),
            lambda path: plot.reconstructions(real, rebuilt, path),
        )
    if "ddls" not in results:
        return
    settings = {k: v for k, v in results["ddls"]["sampler"].items() if k != "name"}
    settings["record_every"] = max(1, int(settings.get("num_steps", 20)) // 20)
    sampler = factory.make_sampler("ddls", settings, seed=seed)
    sampler.sample(model, 16)
    frames = np.stack([np.asarray(model.generate(z)) for z in sampler.latent_path])
    files.atomic_write(
        os.path.join(out_dir, CHAINS_FILE),
        lambda path: plot.animation(frames, path, nrow=8, duration=150),
    )


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


def ddls_sweep(
    model,
    settings: dict,
    sweep: dict,
    score,
    num_samples: int,
    calibration_images: np.ndarray | None = None,
    measured: dict | None = None,
    on_measured=None,
) -> dict:
    """Chooses DDLS's step size, steps and temperature scale on held-out images.

    Every combination of `step_size`, `num_steps` and `temperature_scale`
    runs on the same small sample (its own seed); `score` measures against
    held-out real images (the recipes use training images), never the split
    the card reports. A temperature scale `s` runs the chain at `T * s`
    (`ek.samplers.DDLS(temperature_scale=s)`): the calibrated `T` makes the
    calibrated density ratio the target, and `s < 1` sharpens it.

    Args:
        model: the trained model.
        settings: dict. DDLS settings; `temperature` may be `"calibrated"`.
        sweep: dict. `step_size` (list of floats), `num_steps` (list of int;
            defaults to the settings' one), `temperature_scale` (list of
            floats; defaults to `[1.0]`), `num_samples`, `seed`.
        score: callable `(images, count) -> EvaluationReport` with `"fid"`.
        num_samples: int. Generated images of the final evaluation (the sweep
            uses at most this many).
        calibration_images: array. Real images for a calibrated temperature.
        measured: dict. FIDs already measured by an earlier run of the same
            sweep (keys as in the returned `"fid"`); those settings are not
            run again. Every setting runs on its own seeded sample, so a
            resumed sweep measures what an uninterrupted one would.
        on_measured: callable `(fid_rows) -> None`, called after each new
            measurement (to keep them on disk).

    Returns:
        A dict with the FID of plain sampling and of every setting on the
        sweep's sample (keys `"step_size/num_steps"`, with `"/xS"` added
        when the sweep lists a temperature scale `S` other than 1 or several
        scales), `best` (the chosen
        `{"step_size", "num_steps"}`, with `"temperature_scale"` when the
        sweep has several) and `best_step_size`.
    """
    from ebgan_keras import samplers

    count = min(int(sweep.get("num_samples", 2000)), num_samples)
    seed = int(sweep.get("seed", 1))
    rows = dict(measured or {})

    def measure(key: str, sampler) -> None:
        if key not in rows:
            images = sampler.sample(model, count)[0]
            rows[key] = float(score(images, count)["fid"].value)
            if on_measured is not None:
                on_measured(rows)

    measure("prior", samplers.get({"class_name": "prior", "config": {"seed": seed}}))
    temperature = None
    settings = dict(settings)
    if settings.get("temperature") == CALIBRATED:
        fitted = ddls_sampler(model, settings, calibration_images, seed)
        temperature = fitted.temperature
        settings |= {"temperature": temperature, "calibration": fitted.calibration}
    choices = _sweep_choices(sweep, settings.get("num_steps", 10))
    for key, choice in choices.items():
        measure(key, _make_sampler("ddls", {**settings, **choice}, model, None, seed))
    rows = {key: rows[key] for key in ("prior", *choices)}
    best = min(choices, key=lambda key: rows[key])
    return {
        "num_samples": count,
        "seed": seed,
        "reference": "held-out training images",
        "temperature": temperature,
        "fid": rows,
        "best": choices[best],
        "best_step_size": choices[best]["step_size"],
    }


def _sweep_choices(sweep: dict, num_steps: int) -> dict:
    """The settings of a DDLS sweep by key (`"step/steps"`, with `"/xS"`
    when it lists temperature scales), in the order they run; `num_steps`
    when the sweep lists none."""
    steps = [int(n) for n in sweep.get("num_steps", [num_steps])]
    scales = [float(x) for x in sweep.get("temperature_scale", [1.0])]
    choices = {}
    for scale in scales:
        for count in steps:
            for step_size in sweep["step_size"]:
                key = f"{step_size:g}/{count}"
                choice = {"step_size": float(step_size), "num_steps": count}
                if len(scales) > 1 or scale != 1.0:
                    key += f"/x{scale:g}"
                    choice["temperature_scale"] = scale
                choices[key] = choice
    return choices


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
    pictures(model, config, results, out_dir)
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


def reevaluate(
    name: str,
    out_dir: str | None = None,
    run_dir: str | None = None,
    **overrides,
) -> dict:
    """Re-measures a trained entry with its (current) recipe, without training.

    The entry's weights are read from its folder (checked against the sha256
    its `metadata.json` recorded), its training provenance is kept, and the
    evaluation and card stages run again with the recipe's `evaluation`
    section as it is now: how the cards moved to calibrated DDLS, precision
    and recall and the floor without retraining. Resumable from `run_dir`.
    `out_dir` may be the entry's own folder (updated in place).

    Args:
        name: str. Entry name or entry folder (trained).
        out_dir: str. Entry folder to write. Defaults to `zoo_builds/<name>`.
        run_dir: str. Run folder of the evaluation. Defaults to
            `<out_dir>/run`.
        **overrides: `num_samples`, `reference`, `num_reference`,
            `sampler_names`, `sampler_settings` (see `run_recipe`).

    Returns:
        The new metadata of the entry.

    Example:

    ```python
    ek.zoo.reevaluate("ebgan_mnist", out_dir="zoo/ebgan_mnist",
                      run_dir="zoo_builds/ebgan_mnist/eval")
    ```
    """

    from ebgan_keras.run import builder
    from ebgan_keras.zoo import entries

    keep = ("num_samples", "reference", "num_reference")
    keep += ("sampler_names", "sampler_settings", "reference_split", "features")
    keep += ("data_dir",)
    unknown = sorted(set(overrides) - set(keep))
    if unknown:
        raise TypeError(
            f"`reevaluate` does not train: it takes only {keep}. Received: {unknown}"
        )
    source, config, metadata = _trained_entry(name, "reevaluate")
    out_dir = out_dir or os.path.join("zoo_builds", source.name)
    run_dir = run_dir or os.path.join(out_dir, RUN_SUBDIR)
    files.check_writable(out_dir)
    os.makedirs(run_dir, exist_ok=True)
    # The entry's own weights, each checked against its recorded sha256.
    paths = entries._weight_paths(source, metadata, source.name, None, None, None)
    model = builder.build_model(config)
    entries.load_networks(model, paths, source.name)
    _copy_files(
        source,
        out_dir,
        (
            GENERATOR_FILE,
            DISCRIMINATOR_FILE,
            ENCODER_FILE,
            GOLDEN_FILE,
            GRID_FILE,
            CURVES_FILE,
        ),
    )
    files.write_json(os.path.join(out_dir, CONFIG_FILE), config)
    results = evaluate(model, config, run_dir, **overrides)
    pictures(model, config, results, out_dir)
    return write_card(
        model,
        config,
        run_dir,
        out_dir,
        results,
        training=metadata["training"],
        command=metadata.get("recipe_command"),
    )


def rewrite_card(name: str, out_dir: str | None = None) -> dict:
    """Rewrites a trained entry's card after its recipe's text changed.

    For a change of `notes`, `summary`, `paper`, `dataset` or `licence`
    (`card.TEXT_FIELDS`) in an entry's `config.json`: the card and
    `metadata.json` are written again from the measured metadata in seconds,
    where `reevaluate` would measure everything again. Anything else that
    changed (networks, training, evaluation) is refused: its numbers would
    not be what the card says. An entry whose metadata records
    `recipe_sha256` is checked against it; an older one against what its
    metadata records (the model built from the recipe, the training, the
    samplers and their settings, the DDLS sweep's grid and the protocol).

    Args:
        name: str. Entry name or entry folder (trained).
        out_dir: str. Entry folder to write (may be the entry's own).
            Defaults to `zoo_builds/<name>`.

    Returns:
        The new metadata of the entry.

    Raises:
        ValueError: the entry has no training record, or its recipe changed
            beyond its text (the message names what).

    Example:

    ```python
    ek.zoo.rewrite_card("began_mnist", out_dir="zoo/began_mnist")
    ```
    """
    from ebgan_keras.run import builder
    from ebgan_keras.zoo import card

    source, config, metadata = _trained_entry(name, "rewrite_card")
    recipe = card.recipe_sha256(config)
    recorded = metadata.get("recipe_sha256")
    if recorded is not None:
        changed = [] if recipe == recorded else ["the recipe"]
    else:
        changed = _changes_since_measured(config, metadata)
    base = card._base_metadata(builder.build_model(config), config)
    changed += [
        key
        for key, value in base.items()
        if key not in card.TEXT_FIELDS and value != metadata.get(key)
    ]
    if changed:
        raise ValueError(
            f"{source.name!r}: {', '.join(changed)} changed since the entry was "
            "measured; only its text (" + ", ".join(card.TEXT_FIELDS) + ") may "
            "change for `rewrite_card`. Re-measure with `ebgan-keras zoo build "
            f"{source.name} --evaluate-only` (or retrain) instead."
        )
    out_dir = out_dir or os.path.join("zoo_builds", source.name)
    files.check_writable(out_dir)
    _copy_files(source, out_dir, metadata.get("files", {}))
    files.write_json(os.path.join(out_dir, CONFIG_FILE), config)
    metadata = metadata | base | {"recipe_sha256": recipe}
    return card.write_card_files(config, metadata, out_dir)


def _changes_since_measured(config: dict, metadata: dict) -> list[str]:
    """What of `config` differs from what `metadata` records it was measured
    with: training, samplers and settings, DDLS sweep grid, protocol."""
    changed = []
    training, recipe = metadata["training"], config["training"]
    for key, recorded in (
        ("batch_size", training.get("batch_size")),
        ("epochs", training.get("epochs")),
    ):
        if recipe.get(key) != recorded:
            changed.append(f"training.{key}")
    evaluation = config["evaluation"]
    metrics = metadata.get("metrics", {})
    if set(evaluation["samplers"]) != set(metrics):
        changed.append("evaluation.samplers")
    for name, settings in evaluation["samplers"].items():
        used = metrics.get(name, {}).get("sampler", {})
        for key, value in settings.items():
            chosen_by_sweep = name == "ddls" and key in ("step_size", "num_steps")
            if key == "temperature" and value == CALIBRATED:
                value = used.get("temperature") if used.get("calibration") else value
            if not chosen_by_sweep and used.get(key) != value:
                changed.append(f"evaluation.samplers.{name}.{key}")
    for name, result in metrics.items():
        protocol = result.get("protocol", {})
        for key, value in (
            ("num_generated", evaluation["num_samples"]),
            ("reference", evaluation["reference"]),
            ("reference_split", evaluation.get("reference_split", "test")),
            ("features", evaluation["features"]),
        ):
            if protocol.get(key) != value:
                changed.append(f"evaluation.{key} ({name})")
    sweep, swept = evaluation.get("ddls_sweep"), metadata.get("ddls_sweep")
    default_steps = evaluation["samplers"].get("ddls", {}).get("num_steps", 10)
    if bool(sweep) != bool(swept) or (
        sweep
        and (
            set(swept["fid"]) != {"prior", *_sweep_choices(sweep, default_steps)}
            or swept["seed"] != int(sweep.get("seed", 1))
        )
    ):
        changed.append("evaluation.ddls_sweep")
    return sorted(set(changed))


def _trained_entry(name: str, what: str) -> tuple:
    """`(folder, config, metadata)` of a trained entry; a ValueError naming
    `what` needs it for one declared without weights."""
    from ebgan_keras.zoo import entries

    source = entry_dir(name)
    metadata = files.read_json(source / entries.METADATA_FILE, {})
    if not metadata.get("training"):
        raise ValueError(
            f"`{what}` needs a trained entry; {source.name!r} has no "
            f"training record (declared without weights). Received: name={name!r}"
        )
    return source, read_config(source), metadata


def _copy_files(source, out_dir: str, filenames) -> None:
    """Copies the named files that `source` has into `out_dir` (not onto
    themselves when `out_dir` is `source`)."""
    import shutil

    for filename in filenames:
        path, target = source / filename, os.path.join(out_dir, filename)
        if path.is_file() and not (
            os.path.exists(target) and os.path.samefile(path, target)
        ):
            shutil.copyfile(path, target)

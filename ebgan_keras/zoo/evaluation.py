"""Stage 3 of a zoo build: every sampler's FID/KID/precision/recall, resumable.

`evaluate` measures each sampler of a recipe against the reference split, a
DDLS sweep (`ddls_sweep`) choosing DDLS's settings on held-out training
images, and the floor (real images under the entry's own protocol); every
result is kept in `run_dir/eval.json` as soon as it is measured. The
samplers come from `ek.samplers.factory`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

import numpy as np

from ebgan_keras import files
from ebgan_keras.samplers.factory import CALIBRATED
from ebgan_keras.samplers.factory import compile_options

# Real images that calibrate the energy (rejection, MH, calibrated DDLS): the
# first of the training split, as `--calibration-split train` in the CLI.
NUM_CALIBRATION = 2000
# Held-out real images for choosing DDLS's settings and for the floor: the
# first of the training split, never the test split that the card reports.
NUM_HELD_OUT = 10000
# Bumped when what `evaluate` measures changes, so old results are re-measured.
EVALUATION_VERSION = 2


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
    evaluation = _with_overrides(config["evaluation"], sampler_settings or {})
    num_samples = num_samples or evaluation["num_samples"]
    measure = _Measure(
        config,
        evaluation,
        reference,
        num_reference,
        reference_split or evaluation.get("reference_split", "test"),
        features or evaluation["features"],
        data_dir,
    )
    path = os.path.join(run_dir, "eval.json")
    results = _results_with_floor(path, measure, num_samples)
    names = sampler_names or list(evaluation["samplers"])
    ddls_settings = {**evaluation["samplers"].get("ddls", {}), **compile_options(model)}
    requested = _drop_stale(results, evaluation, names)
    if "ddls" in names and requested["_ddls_sweep"] and "_ddls_sweep" not in results:
        _run_sweep(model, results, path, ddls_settings, requested, measure, num_samples)
    for name in (name for name in names if name not in results):
        settings = dict(evaluation["samplers"].get(name, {}))
        if name == "ddls":  # the sweep's choice
            settings = ddls_settings | results.get("_ddls_sweep", {}).get("best", {})
        results[name] = _measure_sampler(model, name, settings, measure, num_samples)
        results["_requested"][name] = requested[name]
        files.write_json(path, results)
    extras = [extra for extra in ("_ddls_sweep", "_floor") if extra in results]
    return {name: results[name] for name in (*names, *extras)}


class _Measure:
    """The real images of one evaluation, each set loaded once, and scoring."""

    def __init__(
        self, config, evaluation, reference, num_reference, split, features, data_dir
    ):
        self.config, self.reference, self.data_dir = config, reference, data_dir
        self.num_reference, self.split, self.features = num_reference, split, features
        self.reference_name = reference or evaluation["reference"]
        self.feature_size = evaluation.get("feature_size")
        self.seed = evaluation.get("seed", 0)
        self.scorers, self.calibration = {}, None
        name = features if isinstance(features, str) else features.name
        self.key = f"{self.reference_name}:{split}:{num_reference}:{name}"

    def images(self, limit, split):
        return _reference_images(
            self.config, self.reference, limit, split, self.data_dir
        )

    def score(self, images, count: int, split: str | None = None, pr: bool = True):
        """The metrics of `images` against the reference (or `split`) images."""
        from ebgan_keras import metrics

        split = split or self.split
        if split not in self.scorers:
            limit = self.num_reference
            if split != self.split:
                limit = min(self.num_reference or NUM_HELD_OUT, NUM_HELD_OUT)
            real = self.images(limit, split)
            self.scorers[split] = to_feature_size(real, self.feature_size)
        # Generators without a final tanh (BEGAN's) may step outside [-1, 1]:
        # scored as the images they show, clipped to the pixel range.
        images = np.clip(np.asarray(images), -1.0, 1.0)
        return metrics.evaluate(
            to_feature_size(images, self.feature_size),
            reference=self.scorers[split],
            metrics=("fid", "kid", "precision_recall") if pr else ("fid",),
            features=self.features,
            seed=self.seed,
            reference_name=self.reference_name,
            reference_split=split,
            kid_subset_size=min(1000, count),
        )

    def calibration_images(self):
        """The first `NUM_CALIBRATION` training images (loaded once)."""
        if self.calibration is None:
            limit = min(self.num_reference or NUM_CALIBRATION, NUM_CALIBRATION)
            self.calibration = self.images(limit, "train")
        return self.calibration

    def floor(self, num_samples: int) -> dict:
        """What real training images score under the entry's own protocol."""
        count = min(self.num_reference or num_samples, num_samples)
        real = self.images(count, "train")
        return _summary(self.score(real, len(real))) | {
            "num_images": len(real),
            "split": "train",
        }


def _results_with_floor(path: str, measure: _Measure, num_samples: int) -> dict:
    """The results kept in `path` for this protocol, with the floor measured."""
    key = f"v{EVALUATION_VERSION}:{num_samples}:{measure.key}"
    results = files.read_json(path, {})
    if results.get("_key") != key:
        results = {"_key": key}
    if "_floor" not in results:
        results["_floor"] = measure.floor(num_samples)
        files.write_json(path, results)
    return results


def _drop_stale(results: dict, evaluation: dict, names) -> dict:
    """Drops the results measured with other settings (a sampler's settings,
    or the sweep that chose DDLS's, changed since); returns what is asked."""
    sweep = evaluation.get("ddls_sweep")
    requested = {name: evaluation["samplers"].get(name, {}) for name in names}
    if "ddls" in requested:
        requested["ddls"] = {"settings": requested["ddls"], "sweep": sweep}
    requested = json.loads(json.dumps(requested | {"_ddls_sweep": sweep}))
    recorded = results.setdefault("_requested", {})
    for name, settings in requested.items():
        if recorded.get(name, "unrecorded") != settings:
            results.pop(name, None)
    return requested


def _run_sweep(model, results, path, settings, requested, measure, num_samples):
    """Runs the recipe's DDLS sweep into `results["_ddls_sweep"]`, resumable.

    Each setting's FID is kept as it is measured, so that a sweep killed
    half-way resumes where it stopped (a 12-setting sweep of a 32x32 entry
    takes over half an hour on a CPU).
    """
    partial = results.get("_ddls_sweep_partial", {})
    if partial.get("sweep") != requested["_ddls_sweep"]:
        partial = {"sweep": requested["_ddls_sweep"], "fid": {}}

    def keep(rows: dict) -> None:
        results["_ddls_sweep_partial"] = partial | {"fid": dict(rows)}
        files.write_json(path, results)

    calibrated = settings.get("temperature") == CALIBRATED
    results["_ddls_sweep"] = ddls_sweep(
        model,
        settings,
        requested["_ddls_sweep"],
        lambda images, count: measure.score(images, count, split="train", pr=False),
        num_samples,
        measure.calibration_images() if calibrated else None,
        measured=partial["fid"],
        on_measured=keep,
    )
    results.pop("_ddls_sweep_partial", None)
    results["_requested"]["_ddls_sweep"] = requested["_ddls_sweep"]
    files.write_json(path, results)


def _measure_sampler(model, name, settings, measure, num_samples) -> dict:
    """One sampler's row: its scores, speed and settings."""
    from ebgan_keras.samplers import factory

    needs_real = factory.needs_real_images(name, settings)
    sampler = _make_sampler(
        name,
        settings,
        model,
        measure.calibration_images() if needs_real else None,
        measure.seed,
    )
    start = time.perf_counter()
    images, _ = sampler.sample(model, num_samples)
    seconds = time.perf_counter() - start
    report = measure.score(images, num_samples)
    return _summary(report) | {
        "seconds_per_1000": 1000.0 * seconds / num_samples,
        "num_samples": num_samples,
        "sampler": sampler.get_config() | {"name": name},
        "report": report.to_dict(),
    }


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

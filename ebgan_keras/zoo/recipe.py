"""Zoo recipes: one function that builds any entry from its `config.json`.

An entry's `config.json` is its recipe as data (architecture, data, training
and evaluation settings); `run_recipe` runs it end to end in stages, each of
which resumes from the run folder after an interruption:

1. train: `model.fit` with `ek.callbacks.BackupAndRestore` (exact resume),
   history and wall time written after every epoch;
2. export: generator and discriminator `.weights.h5`, the golden file of fixed
   latents and outputs, the sample grid and curves;
3. evaluate: FID/KID for every sampler of the recipe (each result is kept as
   soon as it is measured);
4. card: `metadata.json` (sha256 of every file, provenance, metrics with
   their protocol) and the `README.md` model card.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np

FORMAT_VERSION = 1
#: Fixed file names of an entry folder.
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
GENERATOR_FILE = "generator.weights.h5"
DISCRIMINATOR_FILE = "discriminator.weights.h5"
GOLDEN_FILE = "golden.npz"
CARD_FILE = "README.md"
GRID_FILE = "samples.png"
CURVES_FILE = "curves.png"
WEIGHT_FILES = {"generator": GENERATOR_FILE, "discriminator": DISCRIMINATOR_FILE}
#: Golden outputs must be reproduced within these tolerances on every backend.
GOLDEN_ATOL = {"images": 1e-3, "energies_rtol": 1e-3}
GOLDEN_SAMPLES = 8
#: Relative FID change below which a card calls a sampler's effect noise.
FID_NOISE = 0.01


def read_config(name: str) -> dict:
    """The recipe (`config.json`) of an entry, by name or entry folder.

    Args:
        name: str. Entry name or entry folder.

    Returns:
        The config dict.

    Example:

    >>> from ebgan_keras.zoo import recipe
    >>> recipe.read_config("ebgan_pt_mnist")["class"]
    'EBGANPT'
    """
    from ebgan_keras.zoo import entries

    with open(entries.entry_dir(name) / CONFIG_FILE) as handle:
        return json.load(handle)


# ----------------------------------------------------------------------
# Model from a config
# ----------------------------------------------------------------------
def _model_classes() -> dict:
    import ebgan_keras as ek

    return {
        "EBGAN": ek.EBGAN,
        "EBGANPT": ek.EBGANPT,
        "BEGAN": ek.BEGAN,
        "MAGAN": ek.MAGAN,
        "GAN": ek.GAN,
    }


def _network(spec: dict, role: str):
    from ebgan_keras import networks

    builder = spec.get("builder")
    if not isinstance(builder, str) or not hasattr(networks, builder):
        raise ValueError(
            f"config {role!r}: `builder` must name a function of ek.networks. "
            f"Received: builder={builder!r}"
        )
    return getattr(networks, builder)(**spec.get("kwargs", {}))


def create_model(config: dict, seed: int | None = None):
    """Builds an entry's model, untrained, from its config dict.

    Args:
        config: dict. The entry's `config.json`.
        seed: int. Seed of the model's latents. Defaults to the recipe's
            training seed.

    Returns:
        An uncompiled `ek.EnergyGAN` (or `ek.GAN`) with freshly initialised
        weights.

    Example:

    ```python
    from ebgan_keras.zoo import recipe

    model = recipe.create_model(recipe.read_config("ebgan_pt_mnist"))
    ```
    """
    classes = _model_classes()
    name = config.get("class")
    if name not in classes:
        raise ValueError(
            f"config `class` must be one of {sorted(classes)}. Received: class={name!r}"
        )
    if seed is None:
        seed = config.get("training", {}).get("seed", 0)
    generator = _network(config["generator"], "generator")
    discriminator = _network(config["discriminator"], "discriminator")
    return classes[name](generator, discriminator, seed=seed, **config.get("model", {}))


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
    models on TensorFlow as `tf.function` graphs without XLA. (Training needs
    nothing: Keras resolves `jit_compile="auto"` to `False` on CPU-only
    TensorFlow.)
    """
    if keras.backend.backend() == "tensorflow" and has_convolutions(model):
        return {"jit_compile": False}
    return {}


def compile_model(model, config: dict) -> None:
    """Compiles `model` with the recipe's optimizers (the model's defaults)."""
    d_optimizer, g_optimizer = model.default_optimizers()
    rates = config.get("training", {}).get("learning_rate")
    if rates is not None:
        d_optimizer.learning_rate = rates["discriminator"]
        g_optimizer.learning_rate = rates["generator"]
    model.compile(d_optimizer, g_optimizer)


# ----------------------------------------------------------------------
# Stage 1: training
# ----------------------------------------------------------------------
class _RunLog(keras.callbacks.Callback):
    """Writes `history.json` and the wall time after every epoch, across resumes."""

    def __init__(self, run_dir: str) -> None:
        super().__init__()
        from ebgan_keras.callbacks import JSONHistory

        self.history = JSONHistory(os.path.join(run_dir, "history.json"))
        self.info_path = os.path.join(run_dir, "train_info.json")

    def set_model(self, model):
        super().set_model(model)
        self.history.set_model(model)

    def on_train_begin(self, logs=None):
        self.history.on_train_begin(logs)
        self.info = _read_json(self.info_path, {"wall_time_s": 0.0, "segments": 0})
        self.info["segments"] += 1
        self.info["backend"] = keras.backend.backend()
        self.info["versions"] = _versions()
        self.info["machine"] = _machine()
        self.start = time.perf_counter()
        self.base_seconds = self.info["wall_time_s"]

    def on_epoch_end(self, epoch, logs=None):
        self.history.on_epoch_end(epoch, logs)
        self.info["wall_time_s"] = self.base_seconds + time.perf_counter() - self.start
        self.info["date"] = datetime.date.today().isoformat()
        self.info["epochs_done"] = epoch + 1
        self.info["steps_done"] = int(
            keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        )
        _write_json(self.info_path, self.info)


def _training_data(config: dict, data: str | None, batch_size: int | None = None):
    import ebgan_keras as ek

    training = config["training"]
    shape = config["image_shape"]
    return ek.data.load(
        data or training["data"],
        batch_size=batch_size or training["batch_size"],
        image_size=training.get("image_size"),
        crop=training.get("crop"),
        channels=shape[2],
        seed=training.get("seed", 0),
    )


def train(
    config: dict,
    run_dir: str,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    data: str | None = None,
    verbose: int = 2,
):
    """Stage 1: trains the recipe's model in `run_dir`, resuming if possible.

    Args:
        config: dict. The entry's config.
        run_dir: str. Run folder (backup, history, wall time, final weights).
        epochs: int. Overrides the recipe's epochs (to shrink it in tests).
        steps_per_epoch: int. Overrides one pass over the data.
        data: str. Overrides the recipe's data set name.
        verbose: int. Keras `fit` verbosity. Defaults to `2`.

    Returns:
        The trained model.
    """
    import ebgan_keras as ek

    training = config["training"]
    epochs = epochs or training["epochs"]
    steps_per_epoch = steps_per_epoch or training.get("steps_per_epoch")
    os.makedirs(run_dir, exist_ok=True)
    keras.utils.set_random_seed(training.get("seed", 0))
    model = create_model(config)
    compile_model(model, config)
    final = os.path.join(run_dir, "final.weights.h5")
    info = _read_json(os.path.join(run_dir, "train_info.json"), {})
    if os.path.isfile(final) and info.get("epochs_done", 0) >= epochs:
        model.load_weights(final)
        return model
    dataset = _training_data(config, data)
    if steps_per_epoch is not None:
        dataset = dataset.repeat()
    model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=[
            ek.callbacks.BackupAndRestore(
                os.path.join(run_dir, "backup"), delete_checkpoint=False
            ),
            _RunLog(run_dir),
        ],
        verbose=verbose,
    )
    partial = os.path.join(run_dir, "partial.weights.h5")
    model.save_weights(partial)
    os.replace(partial, final)
    return model


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
    _atomic_save_weights(model.generator, os.path.join(out_dir, GENERATOR_FILE))
    _atomic_save_weights(model.discriminator, os.path.join(out_dir, DISCRIMINATOR_FILE))
    rng = np.random.default_rng(config.get("golden_seed", 1234))
    if model.latent_distribution == "uniform":
        latents = rng.uniform(-1, 1, (GOLDEN_SAMPLES, model.latent_dim))
    else:
        latents = rng.standard_normal((GOLDEN_SAMPLES, model.latent_dim))
    golden = golden_outputs(model, latents.astype("float32"))
    partial = os.path.join(out_dir, "golden.partial.npz")
    np.savez(partial, **golden)
    os.replace(partial, os.path.join(out_dir, GOLDEN_FILE))
    grid_latents = model.sample_latents(64, seed=config["training"].get("seed", 0))
    plot.grid(model.generate(grid_latents), os.path.join(out_dir, GRID_FILE))
    history = _read_json(os.path.join(run_dir, "history.json"), {})
    if history:
        plot.history(history, os.path.join(out_dir, CURVES_FILE))
    with open(os.path.join(out_dir, CONFIG_FILE), "w") as handle:
        json.dump(config, handle, indent=1)
        handle.write("\n")


# ----------------------------------------------------------------------
# Stage 3: evaluation
# ----------------------------------------------------------------------
def _reference_images(config: dict, reference: str | None, limit: int | None):
    import ebgan_keras as ek

    evaluation = config["evaluation"]
    training = config["training"]
    dataset = ek.data.load(
        reference or evaluation["reference"],
        split=evaluation.get("reference_split", "test"),
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
    resized = keras.ops.image.resize(
        images, tuple(size), interpolation="bilinear", antialias=True
    )
    return np.clip(keras.ops.convert_to_numpy(resized), -1.0, 1.0)


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

    Returns:
        A dict `{sampler: {"fid", "kid", "kid_std", "seconds_per_1000",
        "sampler", "protocol"}}`.
    """
    from ebgan_keras import metrics

    evaluation = _with_overrides(config["evaluation"], sampler_settings or {})
    num_samples = num_samples or evaluation["num_samples"]
    features = evaluation["features"]
    path = os.path.join(run_dir, "eval.json")
    results = _read_json(path, {})
    key = f"{num_samples}:{reference or evaluation['reference']}:{num_reference}"
    if results.get("_key") != key:
        results = {"_key": key}
    real = _reference_images(config, reference, num_reference)
    feature_size = evaluation.get("feature_size")
    reference_features = to_feature_size(real, feature_size)
    seed = evaluation.get("seed", 0)
    names = sampler_names or list(evaluation["samplers"])

    def score(images, count: int):
        return metrics.evaluate(
            to_feature_size(np.asarray(images), feature_size),
            reference=reference_features,
            metrics=("fid", "kid"),
            features=features,
            seed=seed,
            reference_name=reference or evaluation["reference"],
            reference_split=evaluation.get("reference_split", "test"),
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
        _write_json(path, results)
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
            data = _training_data(config, reference, batch_size=500)
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
        _write_json(path, results)
    measured = {name: results[name] for name in names}
    if "_ddls_sweep" in results:
        measured["_ddls_sweep"] = results["_ddls_sweep"]
    return measured


def _with_overrides(evaluation: dict, overrides: dict) -> dict:
    evaluation = json.loads(json.dumps(evaluation))
    for name, settings in overrides.items():
        if name == "ddls_sweep":
            evaluation["ddls_sweep"] = {**evaluation.get("ddls_sweep", {}), **settings}
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
# Stage 4: metadata and model card
# ----------------------------------------------------------------------
def file_sha256(path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict:
    versions = {"python": platform.python_version(), "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch", "numpy"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    import ebgan_keras

    versions["ebgan_keras"] = ebgan_keras.__version__
    return versions


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()}"


def _base_metadata(model, config: dict) -> dict:
    """What every entry's metadata holds, trained or declared."""
    return {
        "format_version": FORMAT_VERSION,
        "name": config["name"],
        "summary": config["summary"],
        "class": config["class"],
        "paper": config["paper"],
        "dataset": config["dataset"],
        "licence": config["licence"],
        "image_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "latent_distribution": model.latent_distribution,
        "parameters": {
            "generator": int(model.generator.count_params()),
            "discriminator": int(model.discriminator.count_params()),
        },
    }


def _model_lines(config: dict, metadata: dict) -> list[str]:
    return [
        f"- Class: `ek.{config['class']}` ({config['paper']})",
        f"- Images {tuple(metadata['image_shape'])}, latent "
        f"{metadata['latent_dim']} ({metadata['latent_distribution']})",
        f"- Parameters: generator {metadata['parameters']['generator']:,}, "
        f"discriminator {metadata['parameters']['discriminator']:,}",
        f"- Settings: `{json.dumps(config.get('model', {}))}`",
        f"- Generator: `{config['generator']['builder']}"
        f"({_kwargs(config['generator'])})`",
        f"- Discriminator: `{config['discriminator']['builder']}"
        f"({_kwargs(config['discriminator'])})`",
    ]


def write_card(model, config: dict, run_dir: str, out_dir: str, results: dict) -> dict:
    """Stage 4: writes `README.md` and `metadata.json`; returns the metadata."""
    info = _read_json(os.path.join(run_dir, "train_info.json"), {})
    history = _read_json(os.path.join(run_dir, "history.json"), {})
    training = config["training"]
    metadata = {
        **_base_metadata(model, config),
        "training": {
            "backend": info.get("backend", keras.backend.backend()),
            "versions": info.get("versions", _versions()),
            "date": info.get("date", datetime.date.today().isoformat()),
            "epochs": info.get("epochs_done"),
            "steps": info.get("steps_done"),
            "batch_size": training["batch_size"],
            "wall_time_s": round(float(info.get("wall_time_s", 0.0)), 1),
            "segments": info.get("segments"),
            "machine": info.get("machine", _machine()),
            "final_logs": {
                name: values[-1]
                for name, values in history.items()
                if values and values[-1] is not None
            },
        },
        "weights": {"status": "shipped"},
        "recipe_command": f"ebgan-keras zoo build {config['name']}",
        "metrics": {
            name: {key: value for key, value in result.items() if key != "report"}
            | {"protocol": _protocol(result)}
            for name, result in results.items()
            if not name.startswith("_")
        },
        "ddls_sweep": results.get("_ddls_sweep"),
        "golden_tolerance": GOLDEN_ATOL,
        "evaluation": {
            "backend": keras.backend.backend(),
            "versions": _versions(),
            "date": datetime.date.today().isoformat(),
        },
    }
    card = _card_text(config, metadata)
    with open(os.path.join(out_dir, CARD_FILE), "w") as handle:
        handle.write(card)
    names = [CONFIG_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE, GOLDEN_FILE, CARD_FILE]
    names += [n for n in (GRID_FILE, CURVES_FILE) if os.path.isfile(_join(out_dir, n))]
    metadata["files"] = {
        name: file_sha256(os.path.join(out_dir, name)) for name in names
    }
    _write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata


def _join(*parts: str) -> str:
    return os.path.join(*parts)


def _protocol(result: dict) -> dict:
    return result.get("report", {}).get("fid", {}).get("protocol", {})


def _quality_lines(metadata: dict) -> list[str]:
    measured = metadata["metrics"]
    if not measured:
        return ["No metrics: this entry has no weights."]
    prior = measured.get("prior", {}).get("fid")
    rows = []
    for name, result in measured.items():
        settings = {
            key: value
            for key, value in result["sampler"].items()
            if key not in ("name", "seed", "batch_size", "jit_compile")
            and value not in (None, False)
        }
        change = ""
        if prior is not None and name != "prior":
            change = f" ({100 * (result['fid'] - prior) / prior:+.0f}%)"
        rows.append(
            f"| {name} | {result['fid']:.2f}{change} | {result['kid']:.3f} "
            f"| {result['seconds_per_1000']:.2f} | `{json.dumps(settings)}` |"
        )
    protocol = measured.get("prior", next(iter(measured.values())))["protocol"]
    lines = [
        "FID and KID (polynomial kernel on the classifier's features, not "
        "rescaled) against the reference split, each from "
        f"{protocol.get('num_generated')} samples; seconds per 1,000 samples "
        "on the training machine. In brackets: the change of FID against "
        "plain sampling (`prior`).",
        "",
        "| sampler | FID | KID | s / 1000 samples | settings |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Protocol: `" + json.dumps(protocol, sort_keys=True) + "`. Rejection "
        "sampling and Metropolis-Hastings calibrate the energy on 2,000 "
        "training images.",
    ]
    size = list(protocol.get("image_size", [])[:2])
    if size and size != list(metadata["image_shape"][:2]):
        lines[-1] += (
            f" Generated and reference images ({metadata['image_shape'][0]}x"
            f"{metadata['image_shape'][1]}) are resized bilinearly with "
            f"antialiasing to {size[0]}x{size[1]} for the classifier."
        )
    sweep = metadata.get("ddls_sweep")
    if sweep:
        cells = ", ".join(f"{k}: {v:.2f}" for k, v in sweep["fid"].items())
        lines += [
            "",
            f"DDLS step size chosen on {sweep['num_samples']} samples with seed "
            f"{sweep['seed']} (FID by step size: {cells}); best "
            f"{sweep['best_step_size']:g}.",
        ]
    if prior is not None:
        verdicts = {"helped": [], "hurt": [], "noise": []}
        for name, result in measured.items():
            if name != "prior":
                change = (result["fid"] - prior) / prior
                if abs(change) <= FID_NOISE:
                    verdicts["noise"].append(name)
                else:
                    verdicts["helped" if change < 0 else "hurt"].append(name)
        lines += [
            "",
            f"Improve FID over plain sampling by more than {FID_NOISE:.0%} here: "
            f"{', '.join(verdicts['helped']) or 'none'}; make it worse: "
            f"{', '.join(verdicts['hurt']) or 'none'}; within {FID_NOISE:.0%} "
            f"(no measurable change): {', '.join(verdicts['noise']) or 'none'}.",
        ]
    return lines


def _card_text(config: dict, metadata: dict) -> str:
    training = metadata["training"]
    lines = [
        f"# {config['name']}",
        "",
        config["summary"],
        "",
        "![samples](samples.png)",
        "",
        "## Use",
        "",
        "```python",
        "import ebgan_keras as ek",
        "",
        f'model = ek.zoo.load("{config["name"]}")',
        "images = model.generate(64, seed=0)",
        'images, z = ek.samplers.get("ddls").sample(model, 64)',
        "```",
        "",
        "## Quality",
        "",
        *_quality_lines(metadata),
        "",
        "## Model",
        "",
        *_model_lines(config, metadata),
        "",
        "## Training",
        "",
        f"- Data: {config['dataset']}",
        f"- {training['epochs']} epochs, {training['steps']} steps of batch "
        f"{training['batch_size']}, {training['wall_time_s'] / 60:.1f} min on "
        f"{training['machine']} ({training['backend']} backend, "
        f"{training['date']})",
        f"- Rebuild: `{metadata['recipe_command']}` (resumable; see "
        "`ebgan-keras zoo build --help`)",
        "",
        "![curves](curves.png)",
        "",
        *(["## Notes", "", *config["notes"], ""] if config.get("notes") else []),
        "## Licence",
        "",
        config["licence"],
        "",
    ]
    return "\n".join(lines)


def _kwargs(spec: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in spec.get("kwargs", {}).items())


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
        data: str. Overrides the training data set.
        num_samples: int. Overrides the generated images per metric.
        reference: str. Overrides the reference data set.
        num_reference: int. Uses only this many reference images.
        sampler_names: sequence of str. Overrides which samplers are measured.
        sampler_settings: dict. Overrides of sampler settings, see `evaluate`.
        verbose: int. Keras `fit` verbosity. Defaults to `2`.

    Returns:
        The entry's metadata dict.
    """
    model = train(config, run_dir, epochs, steps_per_epoch, data, verbose)
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
    )
    return write_card(model, config, run_dir, out_dir, results)


def _read_json(path: str, default):
    if not os.path.isfile(path):
        return default
    with open(path) as handle:
        return json.load(handle)


def _write_json(path: str, value) -> None:
    partial = path + ".partial"
    with open(partial, "w") as handle:
        json.dump(value, handle, indent=1, default=_json_default)
        handle.write("\n")
    os.replace(partial, path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _atomic_save_weights(model, path: str) -> None:
    partial = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(partial, overwrite=True)
    os.replace(partial, path)


def write_declared_card(config: dict, out_dir: str, reason: str) -> dict:
    """Writes the card and metadata of an entry declared without weights.

    Args:
        config: dict. The entry's config (its full recipe).
        out_dir: str. The entry folder.
        reason: str. Why no weights are shipped.

    Returns:
        The metadata dict (`weights.status == "absent"`).
    """
    model = create_model(config)
    training = config["training"]
    metadata = {
        **_base_metadata(model, config),
        "weights": {"status": "absent", "reason": reason},
        "recipe_command": f"ebgan-keras zoo build {config['name']}",
        "metrics": {},
    }
    lines = [
        f"# {config['name']}",
        "",
        config["summary"],
        "",
        "**No weights are shipped:** " + reason + ".",
        "",
        "## Build it",
        "",
        "On a machine with a GPU and the data (TFDS `celeb_a`, or "
        "`ek.data.from_directory` on an image folder):",
        "",
        "```bash",
        f"ebgan-keras zoo build {config['name']} --out my_zoo/{config['name']}",
        "```",
        "",
        "or load trained weights from files or URLs with their sha256:",
        "",
        "```python",
        f'model = ek.zoo.load("{config["name"]}", weights={{"generator": URL_G, '
        '"discriminator": URL_D}, sha256={"generator": HEX_G, "discriminator": '
        "HEX_D})",
        "```",
        "",
        "## Model",
        "",
        *_model_lines(config, metadata),
        f"- Training: {training['epochs']} epochs of batch {training['batch_size']} "
        f"on {training['data']} (crop {training.get('crop')}, size "
        f"{training.get('image_size')})",
        f"- Evaluation: FID/KID with {config['evaluation']['features']} "
        f"features, {config['evaluation']['num_samples']} samples vs the "
        f"{config['evaluation']['reference_split']} split",
        "",
        "## Licence",
        "",
        config["licence"],
        "",
    ]
    with open(os.path.join(out_dir, CARD_FILE), "w") as handle:
        handle.write("\n".join(lines))
    metadata["files"] = {
        name: file_sha256(os.path.join(out_dir, name))
        for name in (CONFIG_FILE, CARD_FILE)
    }
    _write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata

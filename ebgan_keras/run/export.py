"""Samplers exported as TensorFlow SavedModels, served without this package.

`ek.export(model, path, sampler="ddls")` writes a SavedModel (through
`keras.export.ExportArchive`) whose signatures run the generator, the
energy and the chosen latent sampler inside the graph:

- `generate(z)`: images `(N, H, W, C)` from latents `(N, latent_dim)`.
- `energy(images)`: the per-sample energy `(N,)` (low = looks real).
- `sample(num_samples, seed)`: `{"images", "latents"}` drawn with the
  sampler: latents from the prior with TensorFlow's stateless random ops
  (`seed` an int64 scalar: the same seed gives the same samples), then, for
  DDLS, the Langevin chain of `ek.samplers.DDLS` (the same `keras.ops` step,
  compiled into the graph).
- `ddls_chain(z, noise)` (DDLS only): the chain from given starting latents
  and noise `(num_steps, N, latent_dim)`; `ek.samplers.ddls.build_chain`
  gives the same numbers in Python, which is how the export is tested.

Samplers: `"prior"` (or `"none"`), `"truncation"` and `"ddls"`. Rejection
sampling returns a random number of images per proposal batch and
Metropolis-Hastings needs held-out real images to calibrate and a chain of
proposals per output; neither fits a fixed-size in-graph signature, so they
are not exported (use them in Python).

The SavedModel is written by TensorFlow. Under JAX or PyTorch the model is
saved to a temporary `.keras` file (weights are backend-neutral) and a
TensorFlow subprocess writes the export; TensorFlow must be installed.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ebgan_keras import files

EXPORT_SAMPLERS = ("prior", "none", "truncation", "ddls")
#: Settings each exported sampler takes (the rest are refused by name); the
#: defaults are the samplers' own (`ek.samplers`), filled in by
#: `ek.samplers.factory`. A DDLS `temperature` of `"calibrated"` takes
#: `1 / slope` of the `calibration` given with it (a zoo card's).
SAMPLER_SETTINGS = {
    "prior": (),
    "none": (),
    "truncation": ("threshold",),
    "ddls": (
        "step_size",
        "num_steps",
        "temperature",
        "temperature_scale",
        "noise_scale",
        "calibration",
    ),
}


#: The one line that an install without TensorFlow answers an export with.
NEEDS_TENSORFLOW = (
    "Export to a TensorFlow SavedModel needs TensorFlow, which is not installed: "
    "pip install 'ebgan-keras[tensorflow]'."
)


def tensorflow_available() -> bool:
    """Whether TensorFlow is installed (without importing it)."""
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("tensorflow") is not None


def export(
    model,
    path: str | os.PathLike,
    sampler: str = "ddls",
    sampler_settings: dict | None = None,
    verbose: bool = False,
) -> Path:
    """Writes a TensorFlow SavedModel of a model and its latent sampler.

    Args:
        model: a model of the library (`ek.models.BaseGAN`), trained on any
            backend.
        path: str or path. The SavedModel folder to write. It must not exist
            yet (nothing already written is replaced). Written into a
            temporary folder beside it and renamed, so an interrupted export
            leaves nothing at `path`.
        sampler: str. `"prior"` (alias `"none"`), `"truncation"` or `"ddls"`.
            Defaults to `"ddls"`.
        sampler_settings: dict. The sampler's settings: `threshold` for
            truncation; `step_size`, `num_steps`, `temperature`,
            `temperature_scale`, `noise_scale` and `calibration` for DDLS
            (the defaults of `ek.samplers`); the chain runs at
            `temperature * temperature_scale`, as `ek.samplers.DDLS`.
        verbose: bool. Let Keras print the exported variables. Defaults to
            `False`.

    Returns:
        The path of the SavedModel.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.zoo.load("ebgan_pt_mnist")
    ek.export(model, "ebgan_pt_ddls", sampler="ddls",
              sampler_settings={"num_steps": 50})
    # Elsewhere, with TensorFlow only:
    #   served = tf.saved_model.load("ebgan_pt_ddls")
    #   out = served.sample(tf.constant(16), tf.constant(0, tf.int64))
    ```
    """

    from ebgan_keras.models import BaseGAN  # noqa: PLC0415

    if not tensorflow_available():
        raise ImportError(NEEDS_TENSORFLOW)

    if not isinstance(model, BaseGAN):
        raise TypeError(
            "`model` must be a model of ebgan_keras (ek.models.BaseGAN). "
            f"Received: model of type {type(model).__name__}"
        )
    settings = check_sampler(sampler, sampler_settings)
    path = Path(path)
    if path.exists():
        raise FileExistsError(
            f"`path` must not exist yet (an export never replaces files). "
            f"Received: path={str(path)!r}, which exists"
        )
    return _write_atomically(model, path, sampler, settings, verbose)


def _write_atomically(model, path: Path, sampler: str, settings: dict, verbose):
    """Writes the SavedModel into a temporary folder beside `path`, then
    renames it: a killed or failed export leaves no folder at `path` (that
    would block a rerun, or load half-written)."""
    import keras  # noqa: PLC0415

    files.check_writable(path.parent)
    _remove_stale_partials(path)
    partial = Path(tempfile.mkdtemp(prefix=_partial_prefix(path), dir=path.parent))
    try:
        written = partial / "saved_model"
        if keras.backend.backend() != "tensorflow":
            _export_in_tensorflow_process(model, written, sampler, settings)
        else:
            build_archive(model, sampler, settings).write_out(
                str(written), verbose=verbose
            )
        if path.exists():
            raise FileExistsError(
                f"`path` was created while exporting; an export never replaces "
                f"files. Received: path={str(path)!r}"
            )
        os.rename(written, path)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


def _partial_prefix(path: Path) -> str:
    """`.NAME.partial-PID-`: the temporary folder of an export to `path`."""
    return f".{path.name}{files.PARTIAL_MARKER}-{os.getpid()}-"


def _remove_stale_partials(path: Path) -> None:
    """Removes the temporary folders of killed exports to `path` (those whose
    process no longer runs)."""
    prefix = f".{path.name}{files.PARTIAL_MARKER}-"
    for folder in path.parent.glob(glob.escape(prefix) + "*"):
        pid = folder.name[len(prefix) :].split("-")[0]
        if folder.is_dir() and pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    if os.name == "nt":  # `os.kill` there terminates the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def check_sampler(sampler: str, sampler_settings: dict | None) -> dict:
    """Validates an export's sampler and its settings; returns them filled in.

    Args:
        sampler: str. One of `EXPORT_SAMPLERS`.
        sampler_settings: dict or None. The sampler's settings.

    Returns:
        dict of the sampler's settings with the defaults filled in; for
        DDLS a number for `temperature` (`1 / slope` of a calibration).
    """
    if sampler in ("rejection", "mh", "metropolis_hastings"):
        raise ValueError(
            f"`sampler` {sampler!r} cannot be exported: its number of outputs is "
            "random (rejection) or it needs held-out real images to calibrate "
            "and a chain of proposals per output (Metropolis-Hastings); use it "
            f"from Python. Expected one of {EXPORT_SAMPLERS}. Received: "
            f"sampler={sampler!r}"
        )
    if sampler not in EXPORT_SAMPLERS:
        raise ValueError(
            f"`sampler` must be one of {EXPORT_SAMPLERS}. Received: sampler={sampler!r}"
        )
    sampler_settings = dict(sampler_settings or {})
    allowed = SAMPLER_SETTINGS[sampler]
    unknown = sorted(set(sampler_settings) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown setting(s) {unknown} for the exported {sampler!r} sampler; "
            f"it takes {list(allowed) or 'none'}. Received: "
            f"sampler_settings={sampler_settings!r}"
        )
    # The one factory of samplers (imported here: it loads Keras).
    from ebgan_keras.samplers import factory  # noqa: PLC0415

    built = factory.make_sampler(sampler, sampler_settings, source="sampler_settings")
    if sampler == "truncation":
        return {"threshold": built.threshold}
    if sampler == "ddls":
        names = ("step_size", "num_steps", "temperature", "temperature_scale")
        return {name: getattr(built, name) for name in (*names, "noise_scale")}
    return {}


def build_archive(model, sampler: str, settings: dict):
    """The `keras.export.ExportArchive` of a model's signatures (TensorFlow only).

    Args:
        model: a model of the library.
        sampler: str. One of `EXPORT_SAMPLERS`.
        settings: dict. The sampler's settings (`check_sampler`).

    Returns:
        A `keras.export.ExportArchive` ready for `write_out`.
    """
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    settings = check_sampler(sampler, settings)
    latent_dim = int(model.latent_dim)
    uniform = model.latent_distribution == "uniform"
    archive = keras.export.ExportArchive()
    archive.track(model.generator)
    archive.track(model.discriminator)

    def generate(z):
        return model.generator(z, training=False)

    def energy(images):
        return model.compute_energy(images, training=False)[0]

    archive.add_endpoint(
        "generate",
        generate,
        input_signature=[tf.TensorSpec((None, latent_dim), tf.float32, name="z")],
    )
    archive.add_endpoint(
        "energy",
        energy,
        input_signature=[
            tf.TensorSpec((None, *model.image_shape), tf.float32, name="images")
        ],
    )

    run_chain = None
    if sampler == "ddls":
        run_chain = _add_ddls_chain(archive, model, settings, generate)

    def sample(num_samples, seed):
        shape = tf.stack([num_samples, latent_dim])
        seeds = tf.stack([seed, tf.constant(0, tf.int64)])
        if sampler == "truncation":
            z = _truncated_prior(shape, seeds, settings["threshold"], uniform)
        elif uniform:
            z = tf.random.stateless_uniform(shape, seeds, minval=-1.0, maxval=1.0)
        else:
            z = tf.random.stateless_normal(shape, seeds)
        if run_chain is None:
            return {"images": generate(z), "latents": z}
        noise_seeds = tf.stack([seed, tf.constant(1, tf.int64)])
        noise = tf.random.stateless_normal(
            tf.stack([settings["num_steps"], num_samples, latent_dim]), noise_seeds
        )
        return run_chain(z, noise)

    archive.add_endpoint(
        "sample",
        sample,
        input_signature=[
            tf.TensorSpec((), tf.int32, name="num_samples"),
            tf.TensorSpec((), tf.int64, name="seed"),
        ],
    )
    return archive


def _add_ddls_chain(archive, model, settings: dict, generate):
    """Adds the `ddls_chain(z, noise)` endpoint; returns the chain function."""
    import tensorflow as tf  # noqa: PLC0415
    from keras import ops  # noqa: PLC0415

    from ebgan_keras.samplers import ddls  # noqa: PLC0415

    latent_dim = int(model.latent_dim)
    uniform = model.latent_distribution == "uniform"
    chain = ddls.build_chain(
        # The chain temperature of `ek.samplers.DDLS`: T * temperature_scale.
        ddls.latent_energy_fn(
            model, settings["temperature"] * settings["temperature_scale"]
        ),
        num_steps=settings["num_steps"],
        step_size=settings["step_size"],
        noise_scale=settings["noise_scale"],
        metropolis=False,
        record_energy=False,
    )

    def run_chain(z, noise):
        # The chain runs on arctanh(z) for a uniform prior (samplers.ddls).
        limit = 1.0 - ddls._UNIFORM_EDGE
        w = ops.arctanh(ops.clip(z, -limit, limit)) if uniform else z
        w = chain(w, noise, ops.zeros((1, 1), "float32"))[0]
        z_last = ops.tanh(w) if uniform else w
        return {"images": generate(z_last), "latents": z_last}

    archive.add_endpoint(
        "ddls_chain",
        run_chain,
        input_signature=[
            tf.TensorSpec((None, latent_dim), tf.float32, name="z"),
            tf.TensorSpec(
                (settings["num_steps"], None, latent_dim), tf.float32, name="noise"
            ),
        ],
    )
    return run_chain


def _truncated_prior(shape, seeds, threshold: float, uniform: bool):
    """Prior latents truncated at `threshold`, drawn by the inverse CDF in-graph.

    The distribution of `ek.samplers.Truncation` (normal prior: the standard
    normal conditioned on `|z_i| <= threshold`; uniform prior: `U[-t, t]` with
    `t = min(threshold, 1)`), drawn without redraw loops.
    """
    import tensorflow as tf  # noqa: PLC0415

    if uniform:
        edge = min(float(threshold), 1.0)
        return tf.random.stateless_uniform(shape, seeds, minval=-edge, maxval=edge)
    low = 0.5 * math.erfc(threshold / math.sqrt(2.0))  # Phi(-threshold)
    u = tf.random.stateless_uniform(shape, seeds, minval=low, maxval=1.0 - low)
    return tf.math.ndtri(u)


def _export_in_tensorflow_process(model, path: Path, sampler: str, settings: dict):
    """Saves the model and exports it from a TensorFlow subprocess."""
    with tempfile.TemporaryDirectory(prefix="ek-export-") as folder:
        saved = Path(folder) / "model.keras"
        model.save(saved)
        env = dict(os.environ, KERAS_BACKEND="tensorflow")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        command = [
            sys.executable,
            "-m",
            "ebgan_keras.run.export",
            str(saved),
            str(path),
            "--sampler",
            sampler,
            "--settings",
            json.dumps(settings),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
        raise RuntimeError(
            f"Exporting needs TensorFlow: the TensorFlow subprocess failed: {lines[-1]}"
        )
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m ebgan_keras.run.export MODEL.keras PATH --sampler S --settings J`."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("path")
    parser.add_argument("--sampler", default="ddls")
    parser.add_argument("--settings", default="{}")
    args = parser.parse_args(argv)
    import keras  # noqa: PLC0415

    import ebgan_keras.models  # noqa: F401, PLC0415 (registers the model classes)

    model = keras.saving.load_model(args.model, compile=False)
    export(model, args.path, args.sampler, json.loads(args.settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EXPORT_SAMPLERS", "build_archive", "check_sampler", "export"]

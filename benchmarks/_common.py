"""Shared helpers of the benchmark scripts: machine facts, FLOPs, peak, rows.

Every benchmark row carries the same machine description (`machine_info`),
so that rows measured on different machines or days can sit in one table.
Nothing here imports a Keras backend at module level: the parent process of
`train_throughput.py` only spawns workers and must stay light.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
# Tests point this elsewhere, so that they never touch the stored results.
RESULTS_DIR = Path(os.environ.get("EK_BENCH_RESULTS_DIR", BENCHMARKS / "results"))

# CPU flags that matter for dense linear algebra; the full list is long.
_INTERESTING_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or `platform.processor()`).

    Returns:
        str. For example `"Intel(R) Xeon(R) Processor"`.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector-math CPU flags present on this machine.

    Returns:
        list of str, a subset of `("avx", "avx2", "fma", "avx512f", ...)`.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in _INTERESTING_FLAGS if f in present]
    except OSError:
        pass
    return []


def gpu_name() -> str | None:
    """The first NVIDIA GPU's name from `nvidia-smi`, or None without one.

    Returns:
        str or None.
    """
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None


def machine_info() -> dict:
    """Machine, CPU, versions, date and load average, for every result row.

    Returns:
        dict with keys `machine`, `cpu_model`, `cpu_flags`, `cpu_count`,
        `gpu`, `platform`, `python`, `numpy`, `date`, `load_average`.

    Example:

    >>> sorted(machine_info())[:3]
    ['cpu_count', 'cpu_flags', 'cpu_model']
    """
    return {
        "machine": platform.node() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        # Other jobs share this CPU; the load says how noisy a row is.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def library_versions() -> dict:
    """Installed versions of keras, tensorflow, jax and torch (None if absent).

    Uses package metadata, so nothing heavy is imported.

    Returns:
        dict from package name to version string or None.
    """
    from importlib import metadata

    versions = {}
    for name in ("keras", "tensorflow", "tensorflow-cpu", "jax", "jaxlib", "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def summarize(values: list[float]) -> dict:
    """Median, min and max of repeated measurements.

    Args:
        values: list of float. One measurement per repeat.

    Returns:
        dict with `median`, `min`, `max` and `runs`.

    Example:

    >>> summarize([3.0, 1.0, 2.0])["median"]
    2.0
    """
    if not values:
        raise ValueError(f"`values` must not be empty. Received: values={values!r}")
    return {
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "runs": [float(v) for v in values],
    }


def with_overrides(config: dict, overrides: dict) -> dict:
    """A run config with overrides merged in, key by key, into nested objects.

    The rule of `ebgan_keras.config.merge`, kept here because importing
    `ebgan_keras` imports Keras, which the parent process of
    `train_throughput.py` and the plain loops' processes must not load.

    Args:
        config: dict. A run config (`train_throughput.CONFIGS`).
        overrides: dict. Values to set; nested dicts are merged, other values
            (lists included) replace.

    Returns:
        A new dict.

    Example:

    >>> with_overrides({"training": {"batch_size": 64, "seed": 0}},
    ...                {"training": {"batch_size": 8}})
    {'training': {'batch_size': 8, 'seed': 0}}
    """
    result = copy.deepcopy(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = with_overrides(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# The plain loops (`reference_torch.py`, `reference_jax.py`) implement EBGAN-PT
# on two pairs of network builders and WGAN-GP on one (`REFERENCE_NETWORKS`:
# (class, generator, discriminator) -> kind), read the model kwargs of their
# class (`REFERENCE_MODEL_KWARGS`: kwarg -> type) and these builder kwargs of
# each kind (`REFERENCE_FIELDS`: field of the loops -> (network, kwarg)). Any
# other kwarg would change the Keras model and not theirs, so `reference_spec`
# raises on it.
REFERENCE_NETWORKS = {
    ("EBGANPT", "ebgan_mlp_generator", "ebgan_mlp_discriminator"): "mlp",
    ("EBGANPT", "dcgan_generator", "ebgan_conv_discriminator"): "conv",
    ("WGANGP", "ebgan_mlp_generator", "gan_mlp_discriminator"): "mlp_critic",
}
REFERENCE_FIELDS = {
    "mlp": {
        "latent_dim": ("generator", "latent_dim"),
        "hidden_units": ("generator", "hidden_units"),
        "encoder_units": ("discriminator", "encoder_units"),
    },
    "conv": {
        "latent_dim": ("generator", "latent_dim"),
        "generator_filters": ("generator", "filters"),
        "discriminator_filters": ("discriminator", "filters"),
    },
    "mlp_critic": {
        "latent_dim": ("generator", "latent_dim"),
        "hidden_units": ("generator", "hidden_units"),
        "critic_units": ("discriminator", "hidden_units"),
    },
}
REFERENCE_MODEL_KWARGS = {
    "EBGANPT": {"margin": float, "pt_weight": float},
    "WGANGP": {"gradient_penalty_weight": float, "critic_steps": int},
}


def reference_spec(config: dict) -> dict:
    """The sizes and settings the plain loops need, read from a run config.

    The plain loops are written by hand for EBGAN-PT on the EBGAN MLPs or on
    the DCGAN generator with the EBGAN convolutional autoencoder, and for
    WGAN-GP on the EBGAN MLP generator with the MLP critic
    (`gan_mlp_discriminator`); their sizes come from the config's builder
    kwargs, so that a `CONFIGS` entry is the one source of both the Keras
    model and its plain counterpart.

    Args:
        config: dict. A run config with `image_shape`, `training.batch_size`,
            exactly the model kwargs of `REFERENCE_MODEL_KWARGS[class]`
            (`margin` and `pt_weight` for EBGANPT; `gradient_penalty_weight`
            and `critic_steps` for WGANGP) and exactly the builder kwargs of
            `REFERENCE_FIELDS`.

    Returns:
        dict with `kind` (`"mlp"`, `"conv"` or `"mlp_critic"`), `batch_size`,
        `image_shape`, the model kwargs of the class and the fields of
        `REFERENCE_FIELDS[kind]`.

    Example:

    >>> import train_throughput
    >>> reference_spec(train_throughput.CONFIGS["C"])["discriminator_filters"]
    [32, 64, 128]
    >>> reference_spec(train_throughput.CONFIGS["E"])["critic_steps"]
    5
    """
    builders = (config["generator"]["builder"], config["discriminator"]["builder"])
    kind = REFERENCE_NETWORKS.get((config["class"], *builders))
    if kind is None:
        accepted = {}
        for name, *pair in REFERENCE_NETWORKS:
            accepted.setdefault(name, []).append(" + ".join(pair))
        described = ", and ".join(
            f"{name} on {' or '.join(pairs)}" for name, pairs in accepted.items()
        )
        raise ValueError(
            f"The plain loops implement {described}. Received: "
            f"class={config['class']!r} on {' + '.join(builders)}"
        )
    fields = REFERENCE_FIELDS[kind]
    model_kwargs = REFERENCE_MODEL_KWARGS[config["class"]]
    kwargs = {
        "model": config.get("model", {}),
        "generator": config["generator"].get("kwargs", {}),
        "discriminator": config["discriminator"].get("kwargs", {}),
    }
    expected = {"model": set(model_kwargs)}
    for role, kwarg in fields.values():
        expected.setdefault(role, set()).add(kwarg)
    for where, keys in expected.items():
        if set(kwargs[where]) != keys:
            raise ValueError(
                f"The plain loops read exactly the {where} kwargs "
                f"{', '.join(sorted(keys))}. Received: {where} kwargs "
                f"{kwargs[where]!r}"
            )
    if config.get("image_shape") is None:
        raise ValueError(
            "The plain loops need the config's `image_shape`. Received: "
            "image_shape=None"
        )
    spec = {
        "kind": kind,
        "batch_size": config["training"]["batch_size"],
        "image_shape": list(config["image_shape"]),
    }
    for name, cast in model_kwargs.items():
        value = kwargs["model"][name]
        if cast is int and (isinstance(value, bool) or int(value) != value):
            raise ValueError(
                f"The plain loops need an int model kwarg `{name}`. Received: "
                f"{name}={value!r}"
            )
        spec[name] = cast(value)
    for field, (role, kwarg) in fields.items():
        spec[field] = kwargs[role][kwarg]
    return spec


def run_rows_worker(command: list[str], env: dict) -> tuple[list[dict] | None, str]:
    """Runs a benchmark worker subprocess that prints `ROWS <json list>`.

    Each worker runs in its own process: on a few CPU cores the thread pools
    of different libraries left in one process slow each other down.

    Args:
        command: list of str. The worker's command line.
        env: dict. Its environment (e.g. with `KERAS_BACKEND`).

    Returns:
        `(rows, stderr)`: the rows of the last `ROWS` line, or `None` when the
        worker failed or printed none.
    """
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("ROWS ")]
    if result.returncode != 0 or not lines:
        return None, result.stderr
    return json.loads(lines[-1][5:]), result.stderr


def matmul_peak_gflops(size: int = 2048, repeats: int = 30) -> float:
    """Measured FP32 matmul peak of this machine in GFLOP/s (numpy BLAS).

    A large square matmul is the best case of dense linear algebra; model
    FLOP utilisation (MFU) is measured against it.

    Args:
        size: int. Side of the square matrices. Defaults to `2048`.
        repeats: int. Timed products; the best is kept. Defaults to `30`
            (about 2 s here: the best of 5 gave 158 and 303 GFLOP/s in two
            runs 14 minutes apart on the idle 2-core machine).

    Returns:
        float. GFLOP/s of the fastest product.

    Example:

    >>> matmul_peak_gflops(size=128, repeats=2) > 0
    True
    """
    if size < 1 or repeats < 1:
        raise ValueError(
            f"`size` and `repeats` must be positive. Received: size={size}, "
            f"repeats={repeats}"
        )
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def write_rows(name: str, rows: list[dict], key_fields: tuple[str, ...]) -> Path:
    """Merges rows into `benchmarks/results/<name>.json` and re-renders RESULTS.md.

    A stored row with the same values in `key_fields` (and the same
    `machine`) is replaced, so the file holds the latest measurement of each
    configuration per machine.

    Args:
        name: str. Result file stem, e.g. `"train_throughput"`.
        rows: list of dict. New rows.
        key_fields: tuple of str. Fields that identify a row.

    Returns:
        The path of the JSON file.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    stored = json.loads(path.read_text()) if path.exists() else []
    keys = key_fields + ("machine",)

    def key(row):
        return tuple(json.dumps(row.get(k), sort_keys=True) for k in keys)

    new_keys = {key(r) for r in rows}
    merged = [r for r in stored if key(r) not in new_keys] + list(rows)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    from _report import write_report  # noqa: PLC0415 (benchmarks is not a package)

    write_report()
    return path

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
import sys
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

    The rule of `ebgan_keras.run.config.merge`, kept here because importing
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
    """Best FP32 matmul rate of numpy's BLAS in this process, in GFLOP/s.

    One probe of `peak()`; this one runs with the environment as it is.

    Args:
        size: int. Side of the square matrices. Defaults to `2048`.
        repeats: int. Timed products; the best is kept. Defaults to `30`
            (the best of 5 gave 158 and 303 GFLOP/s in two runs 14 minutes
            apart on the idle 2-core machine).

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


def blas_kernel() -> dict:
    """numpy's BLAS library and the kernel it runs (threadpoolctl), if known.

    Returns:
        dict with `library`, `version`, `architecture` (OpenBLAS' kernel,
        e.g. `"Haswell"`, `"SkylakeX"`, `"Zen"`) and `threads`; `{}` when
        threadpoolctl is not installed.
    """
    try:
        import threadpoolctl
    except ImportError:
        return {}
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            return {
                "library": pool.get("internal_api"),
                "version": pool.get("version"),
                "architecture": pool.get("architecture"),
                "threads": pool.get("num_threads"),
            }
    return {}


#: Environment variables that pin old OpenBLAS builds to a kernel (the VM
#: sets `OPENBLAS_CORETYPE=Haswell`, i.e. AVX2 on an AVX-512 CPU); the peak
#: probe unsets them for its own subprocess only.
_BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _numpy_probe(sizes: tuple, repeats: int) -> dict:
    """Child side of `peak`: numpy matmuls and the BLAS kernel that ran them."""
    rates = {f"numpy_matmul_{n}": matmul_peak_gflops(n, repeats) for n in sizes}
    return {"rates": rates, "blas": blas_kernel()}


def _xla_probe(sizes: tuple, repeats: int, chain: int = 256) -> dict:
    """Child side of `peak`: XLA (JAX) matmuls and an FMA-throughput kernel.

    The FMA kernel keeps 8 independent chains of `chain` multiply-adds per
    element of a 16,384-float (64 KiB) array in one fused loop, so it runs
    from registers and L1 and measures the vector units, not memory.
    """
    import jax
    import jax.numpy as jnp

    def best_seconds(fn, *args):
        fn(*args).block_until_ready()  # compile
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args).block_until_ready()
            best = min(best, time.perf_counter() - start)
        return best

    rates = {}
    rng = np.random.default_rng(0)
    matmul = jax.jit(jnp.matmul)
    for n in sizes:
        a = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        rates[f"xla_matmul_{n}"] = 2.0 * n**3 / best_seconds(matmul, a, b) / 1e9

    @jax.jit
    def fma(x, a, b):
        chains = [x + 1e-3 * i for i in range(8)]
        for _ in range(chain):
            chains = [c * a + b for c in chains]
        return sum(chains)

    x = jnp.asarray(rng.uniform(0, 1, 1 << 14).astype(np.float32))
    seconds = best_seconds(fma, x, jnp.float32(0.999), jnp.float32(1e-4))
    rates["xla_fma"] = 2.0 * 8 * chain * (1 << 14) / seconds / 1e9
    return {"rates": rates, "jax": jax.__version__}


def cpu_clock_ghz() -> float | None:
    """The CPU clock from /proc/cpuinfo (`cpu MHz`, the highest core), in GHz.

    A VM reports the host's nominal or current clock; boost clocks can be
    higher, so a probe may exceed the theoretical peak computed from it.

    Returns:
        float or None where /proc/cpuinfo has no clock.
    """
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    clocks = [float(line.split(":")[1]) for line in lines if line.startswith("cpu MHz")]
    return round(max(clocks) / 1000.0, 3) if clocks else None


def theoretical_peak(flags: list[str], cores: int, clock_ghz: float | None) -> dict:
    """FP32 peak from the ISA: FLOPs per cycle per core x cores x clock.

    Assumes two FMA pipes per core (Zen 2 to Zen 5, Skylake-SP and later
    Xeons with two AVX-512 units); an FMA counts two FLOPs. AVX-512: 2 x 16
    x 2 = 64 FP32 FLOP per cycle; AVX2 with FMA: 32; otherwise SSE: 16.

    Args:
        flags: list of str. From `cpu_flags()`.
        cores: int. Cores the benchmark may use.
        clock_ghz: float or None. From `cpu_clock_ghz()`.

    Returns:
        dict with `isa`, `flops_per_cycle_per_core`, `cores`, `clock_ghz` and
        `gflops` (None without a clock).

    Example:

    >>> theoretical_peak(["avx2", "fma"], 2, 2.5)["gflops"]
    160.0
    """
    if "avx512f" in flags:
        isa, per_cycle = "AVX-512 (2 FMA pipes x 16 lanes)", 64
    elif "avx2" in flags and "fma" in flags:
        isa, per_cycle = "AVX2+FMA (2 FMA pipes x 8 lanes)", 32
    else:
        isa, per_cycle = "SSE (2 pipes x 4 lanes, no FMA)", 16
    gflops = None if clock_ghz is None else round(per_cycle * cores * clock_ghz, 1)
    return {
        "isa": isa,
        "flops_per_cycle_per_core": per_cycle,
        "cores": cores,
        "clock_ghz": clock_ghz,
        "gflops": gflops,
    }


def peak(repeats: int = 20, sizes: tuple = (2048, 4096)) -> dict:
    """The machine's measured FP32 peak: the best of matmuls and an FMA probe.

    Runs, each in its own subprocess (so that no library's thread pool is
    left in the caller): numpy matmuls of `sizes` with the OpenBLAS kernel
    pins unset (`_BLAS_PINS`, for that subprocess only), and XLA (JAX)
    matmuls plus an FMA-throughput kernel. MFU is measured against the best
    of them; the ISA's theoretical peak is reported beside it.

    Args:
        repeats: int. Timed repetitions of each probe; the best is kept.
            Defaults to `20`.
        sizes: tuple of int. Matrix sides. Defaults to `(2048, 4096)`.

    Returns:
        dict with `gflops` (the best probe), `best_probe`, `probes` (GFLOP/s
        by probe), `blas` (`blas_kernel()` of the numpy probe),
        `unset_for_numpy` (the pins that were set and unset), `cpu_model`,
        `cpu_flags` and `theoretical` (`theoretical_peak`).
    """
    child_env = {k: v for k, v in os.environ.items() if k not in _BLAS_PINS}
    unset = {k: os.environ[k] for k in _BLAS_PINS if k in os.environ}
    probes, blas = {}, {}
    for name in ("_numpy_probe", "_xla_probe"):
        code = (
            f"import json, sys; sys.path.insert(0, {str(BENCHMARKS)!r}); "
            f"import _common; print('PEAK ' + json.dumps("
            f"_common.{name}({tuple(sizes)!r}, {repeats})))"
        )
        env = child_env if name == "_numpy_probe" else dict(os.environ)
        env.setdefault("JAX_PLATFORMS", "cpu")
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [x for x in result.stdout.splitlines() if x.startswith("PEAK ")]
        if result.returncode != 0 or not lines:
            probes[name] = f"failed: {result.stderr.strip()[-300:]}"
            continue
        out = json.loads(lines[-1][5:])
        probes.update({k: round(v, 1) for k, v in out["rates"].items()})
        blas = out.get("blas", blas)
    rates = {k: v for k, v in probes.items() if isinstance(v, float)}
    if not rates:
        raise RuntimeError(f"Every peak probe failed: {probes}")
    best = max(rates, key=rates.get)
    flags = cpu_flags()
    return {
        "gflops": rates[best],
        "best_probe": best,
        "probes": probes,
        "blas": blas,
        "unset_for_numpy": unset,
        "cpu_model": cpu_model(),
        "cpu_flags": flags,
        "theoretical": theoretical_peak(flags, os.cpu_count() or 1, cpu_clock_ghz()),
    }


#: `peak()` arguments for `--quick` runs and the tests.
QUICK_PEAK = {"repeats": 3, "sizes": (1024,)}


def peak_summary(peak_info: dict) -> str:
    """One line for logs and reports: the peak, its probes and the ISA's peak.

    Args:
        peak_info: dict. From `peak()`.

    Returns:
        str.
    """
    probes = ", ".join(f"{name} {value}" for name, value in peak_info["probes"].items())
    blas = peak_info.get("blas") or {}
    kernel = blas.get("architecture") or "unknown"
    theory = peak_info["theoretical"]
    unset = ", ".join(peak_info.get("unset_for_numpy") or {}) or "none set"
    return (
        f"measured FP32 peak {peak_info['gflops']} GFLOP/s ({peak_info['best_probe']}; "
        f"probes in GFLOP/s: {probes}; numpy's BLAS {blas.get('library', '?')} "
        f"{blas.get('version', '')} kernel {kernel}, kernel pins unset: {unset}); "
        f"CPU {peak_info['cpu_model']}, theoretical peak {theory['isa']}: "
        f"{theory['flops_per_cycle_per_core']} FLOP/cycle x {theory['cores']} cores "
        f"x {theory['clock_ghz']} GHz = {theory['gflops']} GFLOP/s"
    )


def mfu_fields(achieved_gflops: float, peak_info: dict) -> dict:
    """`mfu` of a row against `peak()`, or a flagged measurement error.

    Args:
        achieved_gflops: float. The row's FLOP rate.
        peak_info: dict. From `peak()`.

    Returns:
        dict: `peak_gflops`, `peak_probe`, `theoretical_peak_gflops`, and
        `mfu` (a fraction), or `mfu: None` with `mfu_error` when the rate is
        above the measured peak: the FLOP count or the peak is wrong, and
        the number is no utilisation.

    Example:

    >>> info = {"gflops": 100.0, "best_probe": "p", "theoretical": {}}
    >>> # (a `peak()` dict also carries its probes, summarised in the row)
    >>> mfu_fields(50.0, info)["mfu"], mfu_fields(150.0, info)["mfu"]
    (0.5, None)
    """
    fields = {
        "peak_gflops": round(peak_info["gflops"], 1),
        "peak_summary": peak_summary(peak_info) if "probes" in peak_info else None,
        "peak_probe": peak_info["best_probe"],
        "theoretical_peak_gflops": peak_info["theoretical"].get("gflops"),
    }
    ratio = achieved_gflops / peak_info["gflops"]
    if ratio > 1.0:
        fields["mfu"] = None
        fields["mfu_error"] = (
            f"{achieved_gflops:.1f} GFLOP/s is above the measured peak "
            f"{peak_info['gflops']:.1f}: a measurement error, not a utilisation"
        )
    else:
        fields["mfu"] = round(ratio, 4)
    return fields


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

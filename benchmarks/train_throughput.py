"""Training throughput of `model.fit` per backend, against plain PyTorch and JAX.

Measures steps/s and images/s of `ek.EBGANPT` (and `ek.BEGAN` for the BEGAN
architecture, `ek.WGANGP` for the critic family) on each Keras backend, each
backend in its own subprocess (thread pools of different libraries in one
process interfere), compiled and not, next to a hand-written PyTorch loop
(`reference_torch.py`) and a jitted JAX loop (`reference_jax.py`) on the
same networks and losses.

Timing leaves out warm-up and compilation: a callback records the time at
two batch indices of `fit` (as Keras's `BenchmarkMetricsCallback` does),
after `warmup` steps; each repeat is one `fit` call, and the median, min and
max of the repeats are reported. Data are uniform random images in [-1, 1]
(the speed of a step does not depend on the pixels). FLOPs per step are
counted analytically from the layers (every Dense and convolution; a step
is G forward + 2 D forwards + D backward, then G and D forward + backward,
backward = 2x forward: `4 F_G + 9 F_D`; WGAN-GP below), the peak of the
machine is probed in the same run (`_common.peak`: the best of numpy and
XLA matmuls and an FMA-throughput kernel, beside the ISA's theoretical
peak), and MFU = achieved FLOP/s / peak; a row above the peak is flagged as
a measurement error instead.

WGAN-GP (config E) FLOPs. One training step is `n = critic_steps` critic
updates and one generator update. A critic update: G forward (F_G); D
forward on real and on fake (2 F_D) and their backward (4 F_D); the
penalty's D forward on the interpolates (F_D), its input-gradient backward
(F_D: one matmul per layer, no weight gradient) and the double backward,
i.e. the backward of that input-gradient pass to the weights (2 F_D: per
layer a gradient with respect to the incoming cotangent and one with respect
to the kernel); `F_G + 10 F_D`. The generator update is `3 F_G + 3 F_D` as
above. Total `(n + 3) F_G + (10 n + 3) F_D` per sample; `8 F_G + 53 F_D` at
n = 5 (11.0 GFLOP per step at batch 64). Assumptions: the critic's
activations are piecewise linear (leaky ReLU), so their second derivative is
zero and no backward through the penalty's forward pass is counted
(PyTorch and TensorFlow run that backward anyway, on zero cotangents; JAX
drops it); the interpolation, the norms and the elementwise work are left
out, as everywhere here.

Configurations:
    A: MNIST MLP EBGAN-PT, batch 64, z 64, G 64-1024-1024-784 (BN),
       D 784-1024-512-784.
    B: DCGAN-style 64x64x3 EBGAN-PT (`dcgan_generator(100, 64)`,
       `ebgan_conv_discriminator(64)`), batch 64.
    C: 32x32x1 conv EBGAN-PT (filters 32 / (32, 64, 128)), batch 64, z 64.
    D: BEGAN 32x32x1 (filters 32), batch 64, z 64.
    E: MNIST MLP WGAN-GP (lambda 10, 5 critic updates per step), batch 64,
       z 64, G 64-1024-1024-784 (BN) as in A, critic 784-1024-512-1 (leaky
       ReLU 0.2, no BN), Adam(1e-4, beta_1=0, beta_2=0.9).

Each is a run config of the library's schema (`ebgan_keras.run.config`) in
`CONFIGS`, built by `ebgan_keras.run.builder` like any other run; the plain loops
read their sizes from the same config (`_common.reference_spec`). A new
configuration is one more `CONFIGS` entry. `--overrides` merges JSON into the
configs, e.g. `'{"training": {"batch_size": 8}}'`.

Usage:
    python benchmarks/train_throughput.py --quick
    python benchmarks/train_throughput.py --backends jax,torch --configs A,C

Rows are merged into `benchmarks/results/train_throughput.json` and
`benchmarks/RESULTS.md` is regenerated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

# Run configs of the library's schema (`ebgan_keras.run.config`; `summary` is the
# row's description), built by `ebgan_keras.run.builder`. The plain loops read
# their sizes from the same configs (`_common.reference_spec`); `--overrides`
# is merged into them key by key.
CONFIGS = {
    "A": {
        "summary": "MNIST MLP EBGAN-PT (G 64-1024-1024-784, D 784-1024-512-784)",
        "class": "EBGANPT",
        "model": {"margin": 10.0, "pt_weight": 0.1},
        "generator": {
            "builder": "ebgan_mlp_generator",
            "kwargs": {"latent_dim": 64, "hidden_units": [1024, 1024]},
        },
        "discriminator": {
            "builder": "ebgan_mlp_discriminator",
            "kwargs": {"encoder_units": [1024, 512]},
        },
        "image_shape": [28, 28, 1],
        "training": {"batch_size": 64, "seed": 0},
    },
    "B": {
        "summary": "DCGAN-style 64x64x3 EBGAN-PT (CelebA recipe)",
        "class": "EBGANPT",
        "model": {"margin": 10.0, "pt_weight": 0.1},
        "generator": {
            "builder": "dcgan_generator",
            "kwargs": {"latent_dim": 100, "filters": 64},
        },
        "discriminator": {
            "builder": "ebgan_conv_discriminator",
            "kwargs": {"filters": [64, 128, 256]},
        },
        "image_shape": [64, 64, 3],
        "training": {"batch_size": 64, "seed": 0},
    },
    "C": {
        "summary": "32x32x1 conv EBGAN-PT (filters 32 / 32-64-128)",
        "class": "EBGANPT",
        "model": {"margin": 10.0, "pt_weight": 0.1},
        "generator": {
            "builder": "dcgan_generator",
            "kwargs": {"latent_dim": 64, "filters": 32},
        },
        "discriminator": {
            "builder": "ebgan_conv_discriminator",
            "kwargs": {"filters": [32, 64, 128]},
        },
        "image_shape": [32, 32, 1],
        "training": {"batch_size": 64, "seed": 0},
    },
    "D": {
        "summary": "BEGAN 32x32x1 (filters 32)",
        "class": "BEGAN",
        "model": {},
        "generator": {
            "builder": "began_generator",
            "kwargs": {"latent_dim": 64, "filters": 32},
        },
        "discriminator": {"builder": "began_discriminator", "kwargs": {"filters": 32}},
        "image_shape": [32, 32, 1],
        "training": {"batch_size": 64, "seed": 0},
    },
    "E": {
        "summary": "MNIST MLP WGAN-GP (G 64-1024-1024-784, critic 784-1024-512-1)",
        "class": "WGANGP",
        "model": {"gradient_penalty_weight": 10.0, "critic_steps": 5},
        "generator": {
            "builder": "ebgan_mlp_generator",
            "kwargs": {"latent_dim": 64, "hidden_units": [1024, 1024]},
        },
        "discriminator": {
            "builder": "gan_mlp_discriminator",
            "kwargs": {"hidden_units": [1024, 512]},
        },
        "image_shape": [28, 28, 1],
        "training": {"batch_size": 64, "seed": 0},
    },
}
# Configs the plain loops implement: EBGAN-PT (A, B, C) and WGAN-GP (E).
REFERENCE_CONFIGS = ("A", "B", "C", "E")
# (warmup steps, timed steps) per config; quick values second. A step of E is
# six updates with a double backward (~3.7x the FLOPs of A's).
STEPS = {
    "A": ((10, 40), (4, 10)),
    "B": ((2, 4), (1, 2)),
    "C": ((4, 12), (2, 4)),
    "E": ((4, 12), (2, 4)),
}
STEPS["D"] = STEPS["C"]


def variants(backend: str, config: str, quick: bool) -> list[dict]:
    """The compile settings measured for a backend.

    Args:
        backend: str. `"tensorflow"`, `"jax"` or `"torch"`.
        config: str. Configuration key of `CONFIGS`.
        quick: bool. Fewer variants.

    Returns:
        list of dict with `jit_compile` and `steps_per_execution`.
    """
    if backend == "tensorflow":
        pairs = [(True, 1), (True, 10), (False, 1), (False, 10)]
        if quick:
            pairs = [(True, 1), (False, 10)]
    elif backend == "jax":
        # Eager JAX dispatches op by op: only affordable on the MLP.
        pairs = [(True, 1), (True, 10)] + ([(False, 1)] if config == "A" else [])
        if quick:
            pairs = [(True, 1)]
    elif backend == "torch":
        pairs = [(False, 1)]  # torch eager; torch.compile: see --torch-compile
    else:
        raise ValueError(
            "`backend` must be 'tensorflow', 'jax' or 'torch'. "
            f"Received: backend={backend!r}"
        )
    return [{"jit_compile": j, "steps_per_execution": s} for j, s in pairs]


# ----------------------------------------------------------------------
# Worker side (imports Keras; runs in a subprocess with KERAS_BACKEND set)
# ----------------------------------------------------------------------
def seeded_model(config: dict, seed: int = 0):
    """The untrained model of a run config, with seeded weights.

    `ebgan_keras.run.builder.build_model` after `keras.utils.set_random_seed`, so
    that every worker starts from the same weights.

    Args:
        config: dict. A `CONFIGS` entry, possibly with overrides.
        seed: int. Seed of weights and latents. Defaults to `0`.

    Returns:
        An uncompiled model of the config's class.
    """
    import keras

    from ebgan_keras.run import builder
    from ebgan_keras.run.config import validate

    keras.utils.set_random_seed(seed)
    return builder.build_model(validate(config, "benchmark config"), seed=seed)


def forward_flops(network) -> int:
    """FLOPs of one forward pass of a functional Keras network, per sample.

    Counts multiply-adds (2 FLOPs each) of `Dense`, `Conv2D`,
    `Conv2DTranspose` and `FastConv2DTranspose` layers; activations, batch
    norm and other elementwise work are left out.

    Args:
        network: `keras.Model`. A functional model.

    Returns:
        int. FLOPs per sample.

    Example:

    >>> import keras
    >>> x = keras.Input((3,)); m = keras.Model(x, keras.layers.Dense(4)(x))
    >>> forward_flops(m)
    24
    """
    import math

    import keras

    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            total += forward_flops(layer)
            continue
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        kernel_shape = tuple(kernel.shape)
        if isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(kernel_shape)
        elif len(kernel_shape) == 4:
            # Conv2D: every output pixel sees the kernel; transposed: every input pixel.
            name = type(layer).__name__
            shape = layer.input.shape if "Transpose" in name else layer.output.shape
            total += 2 * shape[1] * shape[2] * math.prod(kernel_shape)
    return int(total)


def step_flops(model, batch_size: int) -> int:
    """Analytic FLOPs of one training step (`n` D steps and one G step).

    D step: G forward, D forward on real and fake, D backward of both
    (2x forward): `F_G + 6 F_D`. With a gradient penalty (a model with
    `gradient_penalty_weight > 0`, e.g. `ek.WGANGP`), `4 F_D` more: D forward
    on the interpolates, its input gradient and the double backward of that
    to the weights (2x the input gradient; the backward through the forward
    pass is left out, zero for piecewise-linear activations). G step: G and D
    forward, and backward through both: `3 F_G + 3 F_D`. `n` is the model's
    `discriminator_steps` (`critic_steps` of the critic family, else 1).
    Total `batch_size * (4 F_G + 9 F_D)` for EBGAN-PT and BEGAN, and
    `batch_size * ((n + 3) F_G + (10 n + 3) F_D)` for WGAN-GP.

    Args:
        model: an `ek.BaseGAN`.
        batch_size: int.

    Returns:
        int. FLOPs of one training step.
    """
    f_g = forward_flops(model.generator)
    f_d = forward_flops(model.discriminator)
    d_steps = int(getattr(model, "discriminator_steps", 1))
    penalty = 4 * f_d if getattr(model, "gradient_penalty_weight", 0) else 0
    d_step = f_g + 6 * f_d + penalty
    g_step = 3 * f_g + 3 * f_d
    return int(batch_size * (d_steps * d_step + g_step))


class StepTimer:
    """Times `fit` between the batch index `warmup - 1` and its last batch.

    Blocks on a log value at both ends, so that asynchronous dispatch (JAX)
    cannot hide unfinished steps.

    Args:
        warmup: int. Steps before timing starts (compilation included).
    """

    def __new__(cls, warmup: int):
        import keras

        class _Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.marks = []

            def on_train_batch_end(self, batch, logs=None):
                if logs:
                    float(next(iter(logs.values())))
                self.marks.append((batch, time.perf_counter()))

            def steps_per_second(self):
                start = [m for m in self.marks if m[0] >= warmup - 1]
                (b0, t0), (b1, t1) = start[0], self.marks[-1]
                if b1 <= b0:
                    raise RuntimeError(f"No timed steps after warm-up: {self.marks}")
                return (b1 - b0) / (t1 - t0)

        return _Timer()


def set_torch_threads(threads: int) -> int | None:
    """Sets PyTorch's intra-op threads (0 keeps its default); returns the count.

    On a CPU shared with other jobs, OpenMP threads that wait for a descheduled
    sibling can make small ops 100x slower (measured here: batch norm of
    64x1024 took 33 ms with 2 threads and 0.05 ms with 1 under load 2), so
    the thread count is a recorded setting of every torch row.
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def keras_worker(
    run_config: dict, config: str, quick: bool, repeats: int, variant_list
) -> list:
    """Measures `fit` for every compile variant on the current backend.

    Args:
        run_config: dict. A `CONFIGS` entry with overrides.
        config: str. Its key.
        quick: bool. Fewer steps.
        repeats: int. Timed `fit` calls per variant.
        variant_list: list of dict or None. Variants; None for `variants()`.

    Returns:
        list of dict rows (without machine fields).
    """
    import keras
    import numpy as np

    from ebgan_keras.run import builder

    backend = keras.backend.backend()
    threads = None
    if backend == "torch":
        threads = set_torch_threads(int(os.environ.get("EK_BENCH_TORCH_THREADS", "0")))
    warmup, steps = STEPS[config][1 if quick else 0]
    rows = []
    for variant in variant_list or variants(backend, config, quick):
        spe = variant["steps_per_execution"]
        # Whole executions only: batch indices move by `spe`.
        w = max(spe, -(-warmup // spe) * spe)
        n = max(spe, -(-steps // spe) * spe)
        model = seeded_model(run_config)
        builder.compile_model(model, run_config, **variant)
        batch = run_config["training"]["batch_size"]
        data = (
            np.random.default_rng(0)
            .uniform(-1, 1, ((w + n) * batch, *run_config["image_shape"]))
            .astype("float32")
        )
        rates = []
        for _ in range(repeats):
            timer = StepTimer(w)
            model.fit(data, batch_size=batch, epochs=1, verbose=0, callbacks=[timer])
            rates.append(timer.steps_per_second())
        rows.append(
            {
                "implementation": f"ek.{run_config['class']}",
                "backend": backend,
                **variant,
                "steps_per_s": _common.summarize(rates),
                "flops_per_step": step_flops(model, batch),
                "warmup_steps": w,
                "timed_steps": n,
                "torch_threads": threads,
            }
        )
    return rows


def reference_worker(
    library: str, run_config: dict, config: str, quick: bool, repeats: int
):
    """Measures the plain PyTorch or JAX loop; returns one row."""
    warmup, steps = STEPS[config][1 if quick else 0]
    threads = None
    if library == "torch":
        threads = set_torch_threads(int(os.environ.get("EK_BENCH_TORCH_THREADS", "0")))
    module = __import__(f"reference_{library}")
    spec = _common.reference_spec(run_config)
    rates = module.measure(spec, steps, warmup, repeats)
    name = {"torch": "plain PyTorch loop", "jax": "plain JAX jit loop"}[library]
    return [
        {
            "implementation": name,
            "backend": library,
            "jit_compile": library == "jax",
            "steps_per_execution": 1,
            "steps_per_s": _common.summarize(rates),
            "warmup_steps": warmup,
            "timed_steps": steps,
            "torch_threads": threads,
        }
    ]


# ----------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------
def run_worker(
    worker: str, config: str, args, overrides: dict, variant_list=None
) -> list:
    """Runs one worker subprocess and returns its rows (empty on failure)."""
    backend = worker.split(":")[1]
    env = dict(
        os.environ, KERAS_BACKEND=backend if worker.startswith("keras") else "jax"
    )
    env["EK_BENCH_TORCH_THREADS"] = str(args.torch_threads)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE), env.get("PYTHONPATH", "")]
    )
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        worker,
        "--configs",
        config,
        "--repeats",
        str(args.repeats),
        "--overrides",
        json.dumps(overrides),
    ]
    if variant_list is not None:
        command += ["--variants", json.dumps(variant_list)]
    if args.quick:
        command.append("--quick")
    start = time.perf_counter()
    rows, stderr = _common.run_rows_worker(command, env)
    if rows is None:
        print(f"  {worker} {config} failed:\n{stderr[-3000:]}", file=sys.stderr)
        return [{"implementation": worker, "backend": backend, "error": stderr[-500:]}]
    print(f"  {worker} {config}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return rows


def add_ratios(rows: list[dict], peak_info: dict) -> None:
    """Adds images/s, MFU and ratios to the plain loops, in place."""
    by_config = {}
    for row in rows:
        by_config.setdefault(row["config"], []).append(row)
    for config_rows in by_config.values():
        flops = next(
            (r["flops_per_step"] for r in config_rows if "flops_per_step" in r), None
        )
        baselines = {}
        for row in config_rows:
            if (
                row.get("implementation", "").startswith("plain")
                and "steps_per_s" in row
            ):
                baselines[row["backend"]] = row["steps_per_s"]["median"]
        for row in config_rows:
            if "steps_per_s" not in row:
                continue
            median = row["steps_per_s"]["median"]
            row["images_per_s"] = round(median * row["batch_size"], 1)
            if flops:
                row["flops_per_step"] = flops
                row["achieved_gflops"] = round(median * flops / 1e9, 2)
                row.update(_common.mfu_fields(median * flops / 1e9, peak_info))
            row["ratio_to_plain_torch"] = (
                round(median / baselines["torch"], 3) if "torch" in baselines else None
            )
            row["ratio_to_plain_jax"] = (
                round(median / baselines["jax"], 3) if "jax" in baselines else None
            )


def measure_all(args) -> list[dict]:
    """Runs every requested worker and returns complete rows."""
    peak = _common.peak(**(_common.QUICK_PEAK if args.quick else {}))
    print(_common.peak_summary(peak), file=sys.stderr)
    overrides = json.loads(args.overrides)
    rows = []
    for config in args.configs.split(","):
        run_config = _common.with_overrides(CONFIGS[config], overrides)
        workers = [f"keras:{b}" for b in args.backends.split(",") if b]
        if config in REFERENCE_CONFIGS:
            workers += [f"reference:{lib}" for lib in args.references.split(",") if lib]
        for worker in workers:
            variant_list = None
            if worker == "keras:torch" and args.torch_compile:
                variant_list = [{"jit_compile": False, "steps_per_execution": 1}]
                variant_list.append({"jit_compile": True, "steps_per_execution": 1})
            for row in run_worker(worker, config, args, overrides, variant_list):
                row.update(
                    config=config,
                    description=run_config["summary"],
                    batch_size=run_config["training"]["batch_size"],
                    image_shape=run_config["image_shape"],
                    quick=args.quick,
                    repeats=args.repeats,
                    overrides=overrides or None,
                    **_common.machine_info(),
                    versions=_common.library_versions(),
                )
                rows.append(row)
    add_ratios(rows, peak)
    return rows


KEY_FIELDS = (
    "config",
    "implementation",
    "backend",
    "jit_compile",
    "steps_per_execution",
    "quick",
    "overrides",
    "torch_threads",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and variants")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--configs", default="A,B,C,D,E")
    parser.add_argument("--references", default="torch,jax", help="plain loops to run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--torch-compile", action="store_true", help="also torch.compile"
    )
    parser.add_argument(
        "--overrides",
        default="{}",
        help='JSON merged into the config, e.g. {"training": {"batch_size": 8}}',
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads (0: default)",
    )
    parser.add_argument("--no-save", action="store_true", help="print rows only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--variants", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    """Entry point; returns the rows (also written unless `--no-save`)."""
    args = parse_args(argv)
    if args.repeats < 1:
        raise ValueError(f"`--repeats` must be >= 1. Received: repeats={args.repeats}")
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        raise ValueError(
            f"`--configs` must be among {sorted(CONFIGS)}. "
            f"Received: configs={args.configs!r}"
        )
    if args.worker:
        config = args.configs
        run_config = _common.with_overrides(CONFIGS[config], json.loads(args.overrides))
        kind, name = args.worker.split(":")
        if kind == "keras":
            variant_list = json.loads(args.variants) if args.variants else None
            rows = keras_worker(
                run_config, config, args.quick, args.repeats, variant_list
            )
        else:
            rows = reference_worker(name, run_config, config, args.quick, args.repeats)
        print("ROWS " + json.dumps(rows))
        return rows
    rows = measure_all(args)
    for row in rows:
        if "steps_per_s" in row:
            print(
                f"{row['config']} {row['implementation']:>20} {row['backend']:>10} "
                f"jit={row['jit_compile']!s:5} spe={row['steps_per_execution']:>2} "
                f"{row['steps_per_s']['median']:8.2f} steps/s  "
                f"mfu={row.get('mfu')}  vs torch={row['ratio_to_plain_torch']} "
                f"vs jax={row['ratio_to_plain_jax']}"
            )
    if not args.no_save:
        _common.write_rows("train_throughput", rows, KEY_FIELDS)
    return rows


if __name__ == "__main__":
    main()

"""DDLS throughput: latent Langevin steps per second, Keras samplers vs plain loops.

Measures `ek.samplers.DDLS` on each Keras backend (each in its own process) with
the MNIST MLP networks of the EBGAN paper (`ebgan_mlp_generator(latent_dim=64)`,
`ebgan_mlp_discriminator()`, untrained: timing does not depend on the weights),
batch 256 and 100 steps per chain, next to two hand-written baselines on the
same weights and the same maths:

- a plain JAX loop: `jax.jit` of `lax.fori_loop` with `jax.grad`;
- a plain PyTorch loop: eager `torch.autograd.grad` per step.

The latent energy is `U(z) = |z|^2 / 2 + E(G(z)) / T` with the EBGAN "l2"
energy; the script checks that both baselines compute the same `U` as the
library before timing. Each implementation and backend runs in
its own process (thread pools of different libraries in one process
interfere on a few cores). Compilation is left out (one warm-up run first); each
timed run is a full `sample` call (numpy noise for 100 steps, the chain, and
the final forward pass to images). Rows are merged into
`benchmarks/results/sampler_throughput.json`.

FLOPs of one DDLS step are counted from the layers (`forward_flops` of
`train_throughput.py`): a forward pass of G and D and the gradient with
respect to the input (about one more forward), `2 x batch x (F_G + F_D)`,
3.7 GFLOP at batch 256; the machine's matmul peak is probed in the same run
and every row carries its MFU and its ratios to the plain loops.

The cost of the calibrated samplers is measured on the shipped zoo entry
`ebgan_pt_mnist` (the same MLP networks, trained; calibrated once, untimed,
on the 500 shipped MNIST test digits): seconds per 1,000 *accepted* samples
of `RejectionSampler` (default settings) and `MetropolisHastings` (the
entry's chain length), with the acceptance rate.

Usage:
    python benchmarks/sampler_throughput.py --quick
    python benchmarks/sampler_throughput.py --backends jax --no-baselines

Rows are merged into `benchmarks/results/sampler_throughput.json` and
`benchmarks/RESULTS.md` is regenerated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from train_throughput import forward_flops  # noqa: E402

import ebgan_keras as ek  # noqa: E402
from ebgan_keras import samplers  # noqa: E402
from ebgan_keras.run import builder  # noqa: E402
from ebgan_keras.run.config import load_config  # noqa: E402

STEP_SIZE = 1e-2
TEMPERATURE = 1.0
BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default.


def build_model(seed: int) -> ek.EBGAN:
    """The untrained EBGAN of the built-in config `ebgan` (the MNIST MLPs)."""
    keras.utils.set_random_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return builder.build_model(load_config("ebgan"), (28, 28, 1), seed=seed)


def numpy_weights(model) -> dict:
    """The weights of both MLPs as float32 numpy, by layer name."""
    weights = {}
    for network in (model.generator, model.discriminator):
        for layer in network.layers:
            values = [np.asarray(w, "float32") for w in layer.get_weights()]
            if values:
                weights[layer.name] = values
    return weights


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up: compilation and caches are left out
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


# ----------------------------------------------------------------------
# Plain JAX
# ----------------------------------------------------------------------
def jax_baseline(weights, z0, num_steps, repeats):
    import jax
    import jax.numpy as jnp

    params = jax.tree_util.tree_map(jnp.asarray, weights)

    def generator(p, z):
        x = z
        for i in range(2):
            x = x @ p[f"dense_{i}"][0]
            gamma, beta, mean, variance = p[f"batch_norm_{i}"]
            x = gamma * (x - mean) / jnp.sqrt(variance + BN_EPSILON) + beta
            x = jax.nn.relu(x)
        kernel, bias = p["to_pixels"]
        return jnp.tanh(x @ kernel + bias)

    def energy(p, images):
        x = images
        for i in range(2):
            kernel, bias = p[f"encoder_{i}"]
            x = jax.nn.relu(x @ kernel + bias)
        kernel, bias = p["decoder"]
        reconstruction = jnp.tanh(x @ kernel + bias)
        return jnp.sqrt(jnp.sum(jnp.square(reconstruction - images), axis=1) + 1e-12)

    def latent_energy(p, z):
        return 0.5 * jnp.sum(z**2, axis=1) + energy(p, generator(p, z)) / TEMPERATURE

    grad_u = jax.grad(lambda p, z: jnp.sum(latent_energy(p, z)), argnums=1)

    @jax.jit
    def chain(p, z, key):
        def body(i, z):
            noise = jax.random.normal(jax.random.fold_in(key, i), z.shape)
            return z - 0.5 * STEP_SIZE * grad_u(p, z) + jnp.sqrt(STEP_SIZE) * noise

        return jax.lax.fori_loop(0, num_steps, body, z)

    z0 = jnp.asarray(z0)
    key = jax.random.PRNGKey(0)
    seconds = timed(lambda: chain(params, z0, key).block_until_ready(), repeats)
    energy_check = np.asarray(jax.jit(latent_energy)(params, z0))
    return seconds, energy_check, f"jax {jax.__version__} {jax.devices()[0].platform}"


# ----------------------------------------------------------------------
# Plain PyTorch
# ----------------------------------------------------------------------
def torch_baseline(weights, z0, num_steps, repeats):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    p = {
        name: [torch.as_tensor(v, device=device) for v in values]
        for name, values in weights.items()
    }

    def latent_energy(z):
        x = z
        for i in range(2):
            x = x @ p[f"dense_{i}"][0]
            gamma, beta, mean, variance = p[f"batch_norm_{i}"]
            x = torch.relu(
                gamma * (x - mean) / torch.sqrt(variance + BN_EPSILON) + beta
            )
        kernel, bias = p["to_pixels"]
        images = torch.tanh(x @ kernel + bias)
        x = images
        for i in range(2):
            kernel, bias = p[f"encoder_{i}"]
            x = torch.relu(x @ kernel + bias)
        kernel, bias = p["decoder"]
        reconstruction = torch.tanh(x @ kernel + bias)
        energy = torch.sqrt(((reconstruction - images) ** 2).sum(dim=1) + 1e-12)
        return 0.5 * (z**2).sum(dim=1) + energy / TEMPERATURE

    generator = torch.Generator(device=device).manual_seed(0)

    def chain():
        z = torch.as_tensor(z0, device=device)
        for _ in range(num_steps):
            z = z.detach().requires_grad_(True)
            (gradient,) = torch.autograd.grad(latent_energy(z).sum(), z)
            with torch.no_grad():
                noise = torch.randn(z.shape, generator=generator, device=device)
                z = z - 0.5 * STEP_SIZE * gradient + STEP_SIZE**0.5 * noise
        if device == "cuda":
            torch.cuda.synchronize()
        return z

    seconds = timed(chain, repeats)
    with torch.no_grad():
        energy_check = latent_energy(torch.as_tensor(z0, device=device)).cpu().numpy()
    return seconds, energy_check, f"torch {torch.__version__} {device}"


# ----------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------
def ddls_step_flops(model, batch: int) -> int:
    """Analytic FLOPs of one DDLS step: forward of G and D plus the input gradient.

    Args:
        model: an `ek.BaseGAN`.
        batch: int. Chains run together.

    Returns:
        int. `2 * batch * (F_G + F_D)` (the gradient with respect to the
        input of every layer costs about one more forward pass).
    """
    return (
        2
        * batch
        * (forward_flops(model.generator) + forward_flops(model.discriminator))
    )


def row(implementation, seconds, batch, num_steps, device, quick, flops):
    median = statistics.median(seconds)
    return {
        "benchmark": "ddls",
        "implementation": implementation,
        "keras_backend": keras.backend.backend(),
        "device": device,
        "batch_size": batch,
        "num_steps": num_steps,
        "repeats": len(seconds),
        "seconds_per_chain_median": round(median, 4),
        "seconds_per_chain_min": round(min(seconds), 4),
        "seconds_per_chain_max": round(max(seconds), 4),
        "steps_per_second": round(num_steps / median, 2),
        "latent_steps_per_second": round(batch * num_steps / median, 1),
        "flops_per_step": flops,
        "achieved_gflops": round(flops * num_steps / median / 1e9, 1),
        "quick": quick,
        "keras": keras.__version__,
    }


IMPLEMENTATIONS = {
    "library": "ek.samplers.DDLS",
    "jax": "plain JAX jit loop",
    "torch": "plain PyTorch autograd loop",
    "calibrated": "ek.samplers.RejectionSampler / MetropolisHastings",
}


def measure(
    which: str,
    batch: int,
    num_steps: int,
    repeats: int,
    quick: bool,
    accepted: int = 1000,
):
    """Times one implementation in this process; returns its rows."""
    if which == "calibrated":
        return measure_calibrated(repeats, quick, accepted)
    model = build_model(seed=0)
    flops = ddls_step_flops(model, batch)
    if which == "library":
        sampler = samplers.DDLS(
            step_size=STEP_SIZE,
            num_steps=num_steps,
            temperature=TEMPERATURE,
            seed=0,
            batch_size=batch,
        )
        seconds = timed(lambda: sampler.sample(model, batch), repeats)
        device = _keras_device()
    else:
        weights = numpy_weights(model)
        z0 = np.random.default_rng(0).standard_normal((batch, 64)).astype("float32")
        reference = samplers.DDLS(temperature=TEMPERATURE).latent_energy(model, z0)
        baseline = jax_baseline if which == "jax" else torch_baseline
        seconds, energy_check, device = baseline(weights, z0, num_steps, repeats)
        # Same maths as the library, or the timing compares nothing.
        np.testing.assert_allclose(energy_check, reference, rtol=1e-4, atol=1e-4)
    return [
        row(IMPLEMENTATIONS[which], seconds, batch, num_steps, device, quick, flops)
    ]


def measure_calibrated(repeats: int, quick: bool, count: int = 1000) -> list:
    """Seconds per 1,000 accepted samples of rejection and MH on `ebgan_pt_mnist`."""
    model = ek.zoo.load("ebgan_pt_mnist")
    real = np.concatenate(
        [
            np.asarray(b)
            for b in ek.data.load(
                "mnist_subset", split="test", batch_size=500, shuffle=False
            )
        ]
    )
    from ebgan_keras.zoo import stages

    samplers_config = stages.read_config("ebgan_pt_mnist")["evaluation"]["samplers"]
    chain_length = samplers_config["metropolis_hastings"]["chain_length"]
    built = {
        "ek.samplers.RejectionSampler": samplers.RejectionSampler.calibrate(
            model, real, seed=0
        ),
        "ek.samplers.MetropolisHastings": samplers.MetropolisHastings.calibrate(
            model, real, chain_length=chain_length, seed=0
        ),
    }
    rows = []
    for name, sampler in built.items():
        seconds = timed(lambda s=sampler: s.sample(model, count), repeats)
        median = statistics.median(seconds) * 1000 / count
        rows.append(
            {
                "benchmark": "calibrated",
                "implementation": name,
                "keras_backend": keras.backend.backend(),
                "device": _keras_device(),
                "model": "zoo ebgan_pt_mnist",
                "accepted_samples": count,
                "repeats": len(seconds),
                "seconds_per_1000_accepted": round(median, 3),
                "seconds_per_1000_accepted_min": round(min(seconds) * 1000 / count, 3),
                "acceptance_rate": round(float(sampler.acceptance_rate), 4),
                "chain_length": getattr(sampler, "chain_length", None),
                "quick": quick,
                "keras": keras.__version__,
            }
        )
    return rows


KEY_FIELDS = ("benchmark", "implementation", "keras_backend", "device", "quick")


def add_ratios(rows: list[dict], peak_info: dict) -> None:
    """Adds MFU and the ratios to the plain loops to the DDLS rows, in place."""
    ddls = [r for r in rows if r["benchmark"] == "ddls"]
    baselines = {
        lib: r["steps_per_second"]
        for r in ddls
        for lib in ("jax", "torch")
        if r["implementation"] == IMPLEMENTATIONS[lib]
    }
    for r in ddls:
        r.update(_common.mfu_fields(r["achieved_gflops"], peak_info))
        for lib, steps in baselines.items():
            r[f"ratio_to_plain_{lib}"] = round(r["steps_per_second"] / steps, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed runs")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs (default 5, quick 3)"
    )
    parser.add_argument(
        "--accepted",
        type=int,
        default=None,
        help="accepted samples per timed rejection/MH run (default 1000, quick 200)",
    )
    parser.add_argument(
        "--only",
        choices=sorted(IMPLEMENTATIONS),
        help="time one implementation in this process and print its rows as JSON",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="time only the library"
    )
    parser.add_argument(
        "--no-calibrated", action="store_true", help="skip rejection and MH"
    )
    parser.add_argument("--no-save", action="store_true", help="print rows only")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    accepted = args.accepted or (200 if args.quick else 1000)
    if args.only:
        result = measure(
            args.only, args.batch_size, args.num_steps, repeats, args.quick, accepted
        )
        print("ROWS " + json.dumps(result))
        return

    # Each implementation runs in its own process: on a few CPU cores, the
    # thread pools of JAX/XLA and PyTorch's OpenMP, left in one process,
    # slow each other down by up to 20x (measured).
    peak = _common.peak(**(_common.QUICK_PEAK if args.quick else {}))
    jobs = [(b, "library") for b in args.backends.split(",") if b]
    if not args.no_calibrated:
        jobs += [(b, "calibrated") for b in args.backends.split(",") if b]
    if not args.no_baselines:
        # The plain loops copy the weights of the same model (built on the
        # first backend) and do not depend on Keras's backend: they run once.
        jobs += [(jobs[0][0], "jax"), (jobs[0][0], "torch")]
    rows = []
    for backend, which in jobs:
        command = [sys.executable, __file__, "--only", which]
        command += ["--batch-size", str(args.batch_size)]
        command += ["--num-steps", str(args.num_steps), "--repeats", str(repeats)]
        command += ["--accepted", str(accepted)]
        command += ["--quick"] if args.quick else []
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        worker_rows, stderr = _common.run_rows_worker(command, env)
        if worker_rows is None:
            raise RuntimeError(f"{which} on {backend} failed:\n{stderr[-3000:]}")
        for r in worker_rows:
            r.update(**_common.machine_info(), versions=_common.library_versions())
            rows.append(r)
    add_ratios(rows, peak)
    for r in rows:
        if r["benchmark"] == "ddls":
            print(
                f"{r['implementation']:<30} keras={r['keras_backend']:<10} "
                f"{r['steps_per_second']:>8.2f} steps/s  "
                f"{r['achieved_gflops']:>7.1f} GFLOP/s  mfu={r['mfu']}  "
                f"vs torch={r.get('ratio_to_plain_torch')} "
                f"vs jax={r.get('ratio_to_plain_jax')}"
            )
        else:
            print(
                f"{r['implementation']:<30} keras={r['keras_backend']:<10} "
                f"{r['seconds_per_1000_accepted']:>8.3f} s per 1000 accepted "
                f"(acceptance {r['acceptance_rate']})"
            )
    if not args.no_save:
        _common.write_rows("sampler_throughput", rows, KEY_FIELDS)
    return rows


def _keras_device() -> str:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].platform
    if backend == "torch":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


if __name__ == "__main__":
    main()

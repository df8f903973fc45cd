"""DDLS throughput: latent Langevin steps per second, Keras samplers vs plain loops.

Measures `ek.samplers.DDLS` on the current Keras backend (KERAS_BACKEND) with
the MNIST MLP networks of the EBGAN paper (`ebgan_mlp_generator(latent_dim=64)`,
`ebgan_mlp_discriminator()`, untrained: timing does not depend on the weights),
batch 256 and 100 steps per chain, next to two hand-written baselines on the
same weights and the same maths:

- a plain JAX loop: `jax.jit` of `lax.fori_loop` with `jax.grad`;
- a plain PyTorch loop: eager `torch.autograd.grad` per step.

The latent energy is `U(z) = |z|^2 / 2 + E(G(z)) / T` with the EBGAN "l2"
energy; the script checks that both baselines compute the same `U` as the
library before timing. Each implementation runs in its own
process (thread pools of different libraries in one process interfere on a
few cores). Compilation is left out (one warm-up run first); each
timed run is a full `sample` call (numpy noise for 100 steps, the chain, and
the final forward pass to images). Rows are merged into
`benchmarks/results/sampler_throughput.json`, keyed by implementation and
Keras backend.

Usage:
    KERAS_BACKEND=jax python benchmarks/sampler_throughput.py --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import keras
import numpy as np

import ebgan_keras as ek
from ebgan_keras import samplers

RESULTS = Path(__file__).parent / "results" / "sampler_throughput.json"
STEP_SIZE = 1e-2
TEMPERATURE = 1.0
BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default.


def build_model(seed: int) -> ek.EBGAN:
    keras.utils.set_random_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ek.EBGAN(
            ek.networks.ebgan_mlp_generator(latent_dim=64),
            ek.networks.ebgan_mlp_discriminator(),
            seed=seed,
        )


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
def row(implementation, seconds, batch, num_steps, device, quick):
    median = statistics.median(seconds)
    return {
        "implementation": implementation,
        "keras_backend": keras.backend.backend(),
        "device": device,
        "batch_size": batch,
        "num_steps": num_steps,
        "repeats": len(seconds),
        "seconds_per_chain_median": round(median, 4),
        "seconds_per_chain_min": round(min(seconds), 4),
        "steps_per_second": round(num_steps / median, 2),
        "latent_steps_per_second": round(batch * num_steps / median, 1),
        "quick": quick,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "keras": keras.__version__,
        "date": datetime.date.today().isoformat(),
    }


IMPLEMENTATIONS = {
    "library": "ek.samplers.DDLS",
    "jax": "plain JAX jit loop",
    "torch": "plain PyTorch autograd loop",
}


def measure(which: str, batch: int, num_steps: int, repeats: int, quick: bool):
    """Times one implementation in this process; returns its row."""
    model = build_model(seed=0)
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
    return row(IMPLEMENTATIONS[which], seconds, batch, num_steps, device, quick)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed runs")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--only",
        choices=sorted(IMPLEMENTATIONS),
        help="time one implementation in this process and print its row as JSON",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="time only the library"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    repeats = 3 if args.quick else args.repeats
    if args.only:
        result = measure(
            args.only, args.batch_size, args.num_steps, repeats, args.quick
        )
        print("ROW " + json.dumps(result))
        return

    # Each implementation runs in its own process: on a few CPU cores, the
    # thread pools of JAX/XLA and PyTorch's OpenMP, left in one process,
    # slow each other down by up to 20x (measured).
    which_all = ["library"] if args.no_baselines else list(IMPLEMENTATIONS)
    rows = []
    for which in which_all:
        command = [sys.executable, __file__, "--only", which]
        command += ["--batch-size", str(args.batch_size)]
        command += ["--num-steps", str(args.num_steps), "--repeats", str(repeats)]
        command += ["--quick"] if args.quick else []
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        rows.extend(
            json.loads(line[4:])
            for line in output.splitlines()
            if line.startswith("ROW ")
        )
    for r in rows:
        print(
            f"{r['implementation']:<30} keras={r['keras_backend']:<10} "
            f"{r['steps_per_second']:>8.2f} steps/s  "
            f"{r['latent_steps_per_second']:>10.1f} latent-steps/s  "
            f"({r['seconds_per_chain_median']:.3f} s per "
            f"{args.num_steps}-step chain)"
        )
    _merge(args.output, rows)


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


def _merge(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(path.read_text()) if path.exists() else []
    keys = {(r["implementation"], r["keras_backend"], r["device"]) for r in rows}
    kept = [
        r
        for r in existing
        if (r["implementation"], r["keras_backend"], r["device"]) not in keys
    ]
    path.write_text(json.dumps(kept + rows, indent=2) + "\n")
    print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()

"""Per-layer forward and forward+backward time of a configuration's networks.

Finds which op dominates a training step when a backend lags: each layer of
the generator and discriminator of a `train_throughput.CONFIGS` entry is
timed alone at the shapes it sees in training (batch 64), forward and
forward+backward (gradients of every weight and of the input), on the
current Keras backend: `jax.jit` on JAX, `tf.function(jit_compile=True)` on
TensorFlow, eager autograd on PyTorch.

Usage:
    KERAS_BACKEND=jax python benchmarks/profile_layers.py --config C
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import train_throughput  # noqa: E402


def _timer(function, repeats: int) -> float:
    function()  # compile / warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def layer_functions(layer, inputs):
    """`(forward, forward_backward)` closures of one layer on one input."""
    import keras

    backend = keras.backend.backend()
    kwargs = (
        {"training": True} if isinstance(layer, keras.layers.BatchNormalization) else {}
    )
    weights = [v.value for v in layer.trainable_variables]
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(weights, x):
            values = [w for w in weights] + [
                v.value for v in layer.non_trainable_variables
            ]
            out, _ = layer.stateless_call(
                values[: len(weights)], values[len(weights) :], x, **kwargs
            )
            return jnp.sum(out * out)

        forward = jax.jit(loss)
        backward = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return (
            lambda: jax.block_until_ready(forward(weights, inputs)),
            lambda: jax.block_until_ready(backward(weights, inputs)),
        )
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(inputs)

        @tf.function(jit_compile=True)
        def forward():
            return tf.reduce_sum(tf.square(layer(x, **kwargs)))

        @tf.function(jit_compile=True)
        def backward():
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = tf.reduce_sum(tf.square(layer(x, **kwargs)))
            return tape.gradient(value, [x] + layer.trainable_variables)

        return lambda: forward().numpy(), lambda: [g.numpy() for g in backward()]
    import torch

    x = torch.tensor(inputs, requires_grad=True)

    def forward():
        with torch.no_grad():
            return float(torch.sum(layer(x, **kwargs) ** 2))

    def backward():
        value = torch.sum(layer(x, **kwargs) ** 2)
        return torch.autograd.grad(
            value, [x] + [v.value for v in layer.trainable_variables]
        )

    return forward, backward


def main(argv=None) -> list[dict]:
    """Times every layer with weights; prints a table, returns the rows."""
    import keras
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="C", choices=sorted(train_throughput.CONFIGS)
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config = train_throughput.CONFIGS[args.config]
    model = train_throughput.seeded_model(config)
    batch = config["training"]["batch_size"]
    rng = np.random.default_rng(0)
    rows = []
    for network in (model.generator, model.discriminator):
        for layer in network.layers:
            if not layer.trainable_variables:
                continue
            shape = (batch, *layer.input.shape[1:])
            inputs = rng.standard_normal(shape).astype("float32")
            forward, backward = layer_functions(layer, inputs)
            fwd, both = _timer(forward, args.repeats), _timer(backward, args.repeats)
            rows.append(
                {
                    "network": network.name,
                    "layer": layer.name,
                    "type": type(layer).__name__,
                    "input": list(shape),
                    "forward_ms": round(fwd * 1e3, 2),
                    "forward_backward_ms": round(both * 1e3, 2),
                }
            )
            print(
                f"{keras.backend.backend():>10} {network.name:>26} {layer.name:>22} "
                f"{type(layer).__name__:>20} {str(shape):>20} fwd {fwd * 1e3:8.2f} ms  "
                f"fwd+bwd {both * 1e3:8.2f} ms"
            )
    return rows


if __name__ == "__main__":
    main()

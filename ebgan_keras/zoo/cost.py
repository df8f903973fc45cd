"""What building a zoo entry costs: FLOPs, GPU memory and time, estimated.

The estimates of a declared entry's card (`card.write_declared_card`) come
from here. They count the arithmetic of the convolution and dense layers of
the recipe's networks (elementwise layers, batch norm and resizing, a few
per cent more, are left out) and divide it by an assumed GPU throughput: the
time of the arithmetic alone, a lower bound that data loading, kernel
launches and small, memory-bound convolutions stretch.

A training step of the two-network models (EBGAN, EBGAN-PT, BEGAN, MAGAN,
GAN) costs, per image, `4 G + 8 D` forward passes' worth of FLOPs, counting a
backward pass as two forward passes (input and weight gradients): the
discriminator update runs G forward and D forward and backward on the real
and the generated batch (`G + 6 D`), the generator update runs G forward and
backward and D forward and its input gradient (`3 G + 2 D`).
"""

from __future__ import annotations

import math

#: Assumed sustained throughput of the training step on one GPU, in FLOP/s:
#: about an eighth of the float16 tensor-core peak of an NVIDIA A100 (312
#: TFLOP/s), what small 64x64 convolutions at batch 16 to 64 can use. The
#: time scales inversely with it: halve it for a GPU half as fast.
ASSUMED_FLOPS_PER_SECOND = 40e12
#: Forward passes' worth of FLOPs per image of one training step (see above).
GENERATOR_PASSES = 4
DISCRIMINATOR_PASSES = 8
#: GPU memory of the CUDA context, cuDNN/XLA workspaces and the framework.
FRAMEWORK_BYTES = 1.5 * 1024**3
#: Bytes per parameter: float32 weights, gradients and Adam's two moments.
PARAMETER_BYTES = 16


def _shape(tensor) -> tuple:
    return tuple(int(d) for d in tensor.shape[1:])


def layer_flops(layer) -> int:
    """Forward FLOPs per image of a convolution or dense layer (else 0).

    A multiply-add counts two FLOPs. A convolution costs
    `2 * kernel size * positions`, over its output positions, or over its
    input positions for a transposed convolution (each input pixel is
    spread over the kernel); a dense layer `2 * kernel size` per position.

    Args:
        layer: a built Keras layer of a functional model.

    Returns:
        int. FLOPs per image.

    Example:

    >>> import keras
    >>> from ebgan_keras.zoo import cost
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> cost.layer_flops(model.layers[0])
    64
    """
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    size = math.prod(int(d) for d in kernel.shape)
    if len(kernel.shape) == 2:  # dense: once per position of its input
        positions = math.prod(_shape(layer.output)[:-1])
    elif "Transpose" in type(layer).__name__:
        positions = math.prod(_shape(layer.input)[:-1])
    else:
        positions = math.prod(_shape(layer.output)[:-1])
    return 2 * size * positions


def _layers(network):
    return [
        layer
        for layer in network._flatten_layers(include_self=False)
        if not hasattr(layer, "layers")  # nested models: their layers count
    ]


def network_flops(network) -> int:
    """Forward FLOPs per image of a functional network (`layer_flops` summed).

    Args:
        network: a functional `keras.Model`.

    Returns:
        int. FLOPs per image.
    """
    return sum(layer_flops(layer) for layer in _layers(network))


def activation_elements(network) -> int:
    """Elements of every layer output per image: what a backward pass keeps.

    Args:
        network: a functional `keras.Model`.

    Returns:
        int. Elements per image.
    """
    total = 0
    for layer in _layers(network):
        outputs = layer.output
        for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            total += math.prod(_shape(output))
    return total


def estimate(
    model,
    batch_size: int,
    steps: int,
    mixed_precision: bool = True,
    flops_per_second: float = ASSUMED_FLOPS_PER_SECOND,
) -> dict:
    """FLOPs, GPU memory and time of training a model, estimated.

    Args:
        model: a built two-network model (`generator`, `discriminator`).
        batch_size: int. Images per step.
        steps: int. Training steps.
        mixed_precision: bool. Activations in float16 (2 bytes) rather than
            float32. Defaults to `True`.
        flops_per_second: float. Assumed sustained throughput. Defaults to
            `ASSUMED_FLOPS_PER_SECOND`.

    Returns:
        A dict: `generator_flops` and `discriminator_flops` (forward, per
        image), `step_flops`, `steps`, `total_flops`, `flops_per_second`,
        `hours` (the arithmetic at that throughput), `memory_gib` (weights,
        gradients and Adam states, the activations a step keeps for its
        backward pass twice over (the gradients of those activations), and
        `FRAMEWORK_BYTES`).

    Example:

    ```python
    from ebgan_keras import zoo
    from ebgan_keras.zoo import cost

    cost.estimate(zoo.create_model("ebgan_pt_celeba"), batch_size=64, steps=50860)
    ```
    """
    generator = network_flops(model.generator)
    discriminator = network_flops(model.discriminator)
    step = batch_size * (
        GENERATOR_PASSES * generator + DISCRIMINATOR_PASSES * discriminator
    )
    total = step * steps
    parameters = model.generator.count_params() + model.discriminator.count_params()
    g_elements = activation_elements(model.generator)
    d_elements = activation_elements(model.discriminator)
    # The discriminator update keeps D's activations of the real and the
    # generated batch; the generator update those of G and of D once.
    kept = max(2 * d_elements, g_elements + d_elements) * batch_size
    element_bytes = 2 if mixed_precision else 4
    memory = PARAMETER_BYTES * parameters + 2 * kept * element_bytes
    memory += FRAMEWORK_BYTES
    return {
        "generator_flops": int(generator),
        "discriminator_flops": int(discriminator),
        "step_flops": int(step),
        "steps": int(steps),
        "total_flops": float(total),
        "flops_per_second": float(flops_per_second),
        "hours": total / flops_per_second / 3600.0,
        "memory_gib": memory / 1024**3,
    }


__all__ = [
    "ASSUMED_FLOPS_PER_SECOND",
    "activation_elements",
    "estimate",
    "layer_flops",
    "network_flops",
]

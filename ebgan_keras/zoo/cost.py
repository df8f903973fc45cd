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
backward and D forward and its input gradient (`3 G + 2 D`). A further
network (BiGAN's encoder, any role past the two) is counted like the
generator, trained in the generator update: forward in the discriminator
update, forward and backward in the generator update (`4 E`).
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
#: Passes of a network in any other role (see above).
OTHER_NETWORK_PASSES = 4
#: Passes per network role.
ROLE_PASSES = {"generator": GENERATOR_PASSES, "discriminator": DISCRIMINATOR_PASSES}
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
    from ebgan_keras.backend.keras_internals import walk_layers

    return [
        layer
        for layer in walk_layers(network, include_self=False)
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
        model: a built model of the library (its `networks()`).
        batch_size: int. Images per step.
        steps: int. Training steps.
        mixed_precision: bool. Activations in float16 (2 bytes) rather than
            float32. Defaults to `True`.
        flops_per_second: float. Assumed sustained throughput. Defaults to
            `ASSUMED_FLOPS_PER_SECOND`.

    Returns:
        A dict: `{role}_flops` of each network role (forward, per image:
        `generator_flops`, `discriminator_flops`, ...), `step_flops`,
        `steps`, `total_flops`, `flops_per_second`,
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
    networks = model.networks()
    flops = {role: network_flops(network) for role, network in networks.items()}
    step = batch_size * sum(
        ROLE_PASSES.get(role, OTHER_NETWORK_PASSES) * value
        for role, value in flops.items()
    )
    total = step * steps
    parameters = sum(network.count_params() for network in networks.values())
    elements = {role: activation_elements(net) for role, net in networks.items()}
    d_elements = elements.pop("discriminator")
    # The discriminator update keeps D's activations of the real and the
    # generated batch; the generator update those of D once and of every
    # network it trains (G, and a further role such as BiGAN's encoder).
    kept = max(2 * d_elements, sum(elements.values()) + d_elements) * batch_size
    element_bytes = 2 if mixed_precision else 4
    memory = PARAMETER_BYTES * parameters + 2 * kept * element_bytes
    memory += FRAMEWORK_BYTES
    return {
        **{f"{role}_flops": int(value) for role, value in flops.items()},
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

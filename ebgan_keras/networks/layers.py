"""Layers of the networks that need care to be fast on every backend."""

from __future__ import annotations

import keras
from keras import ops

# For a 4x4, stride-2, "same" transposed convolution, output row 2m + a reads
# input rows (m - 1, m) with kernel rows (3, 1) when a = 0, and rows
# (m, m + 1) with kernel rows (2, 0) when a = 1. Same for columns.
_PHASE_TAPS = ((3, 1), (2, 0))
# Below this many output channels, the JAX path runs the four phases as one
# convolution (see `FastConv2DTranspose._phase_conv_transpose`).
_SINGLE_CONV_MAX_FILTERS = 32
# Up to this many output channels (images: 1 or 3), XLA's own transposed
# convolution is the fastest on JAX. fwd+bwd ms at batch 64 on the 2-core CPU
# (native / one 3x3 conv / four phases): 16x16x32 -> 1: 3.8 / 9.6 / 18.6;
# 32x32x64 -> 3: 112 / 192 / 404; -> 4: 19.7 / 12.6 / 18.6 (so not above 3).
_NATIVE_MAX_FILTERS_JAX = 3


@keras.saving.register_keras_serializable(package="ebgan_keras")
class FastConv2DTranspose(keras.layers.Layer):
    """`Conv2DTranspose(filters, 4, strides=2, padding="same")`, fast on every backend.

    Computes exactly the function of `keras.layers.Conv2DTranspose` with a
    4x4 kernel, stride 2 and `"same"` padding, with the same kernel layout
    `(4, 4, filters, in_channels)`, so weights move between the two and
    between backends. On JAX it runs as four phase convolutions: each output
    phase (even/odd row and column) is an ordinary 2x2 convolution of the
    input with a subset of the kernel's taps, and the phases are interleaved
    (depth-to-space). XLA on CPU runs the kernel gradient of a transposed
    convolution through a naive loop; measured fwd+bwd for 16x16x256 ->
    32x32x128 at batch 64 on this 2-core CPU: 50 s/step transposed vs 1.8
    s/step phased. For 1 to 3 output channels (the last layer, to pixels)
    XLA's transposed convolution is the fastest and is used. TensorFlow and
    PyTorch run their native transposed convolution, which was faster there
    (0.34 vs 0.52 s on TF, 0.62 vs 1.19 s on torch).

    Args:
        filters: int. Number of output channels.
        use_bias: bool. Add a bias. Defaults to `True`.
        kernel_initializer: str or initializer. Defaults to
            `"glorot_uniform"`.
        bias_initializer: str or initializer. Defaults to `"zeros"`.
        **kwargs: arguments of `keras.layers.Layer`.

    Example:

    >>> layer = FastConv2DTranspose(8)
    >>> tuple(layer(keras.ops.zeros((2, 4, 4, 3))).shape)
    (2, 8, 8, 8)
    """

    def __init__(
        self,
        filters: int,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.filters = int(filters)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "FastConv2DTranspose expects inputs (N, H, W, C) with a known C. "
                f"Received: input_shape={input_shape}"
            )
        self.kernel = self.add_weight(
            shape=(4, 4, self.filters, int(input_shape[-1])),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight(
                shape=(self.filters,), initializer=self.bias_initializer, name="bias"
            )
            if self.use_bias
            else None
        )

    def call(self, inputs):
        if keras.backend.backend() != "jax" or self.filters <= _NATIVE_MAX_FILTERS_JAX:
            outputs = ops.conv_transpose(inputs, self.kernel, strides=2, padding="same")
        else:
            outputs = self._phase_conv_transpose(inputs)
        if self.bias is not None:
            outputs = outputs + self.bias
        return outputs

    def _phase_conv_transpose(self, inputs):
        kernel = ops.transpose(ops.convert_to_tensor(self.kernel), (0, 1, 3, 2))
        height, width = inputs.shape[1], inputs.shape[2]
        padded = ops.pad(inputs, ((0, 0), (1, 1), (1, 1), (0, 0)))
        sub_kernels = [
            [
                ops.stack(
                    [ops.stack([kernel[r, c] for c in col_taps]) for r in row_taps]
                )
                for col_taps in _PHASE_TAPS
            ]
            for row_taps in _PHASE_TAPS
        ]
        if self.filters < _SINGLE_CONV_MAX_FILTERS:
            # Thin outputs (4 to 31 filters; 1-3 take XLA's own op): XLA:CPU runs four
            # 1-channel convolutions at ~1 GFLOP/s, so run the four phases as
            # one 3x3 convolution to 4 * filters channels (each phase's 2x2
            # taps placed in its corner of the 3x3 window). Measured in fit on
            # JAX, batch 64: 16x16x32 -> 32x32x1 10.2 -> 4.1 ms/step; at 32
            # filters both took ~9 ms, at 128 this form was 1.4x slower.
            phase_kernels = [
                ops.pad(sub_kernels[a][b], ((a, 1 - a), (b, 1 - b), (0, 0), (0, 0)))
                for a in range(2)
                for b in range(2)
            ]
            outputs = ops.conv(
                padded, ops.concatenate(phase_kernels, axis=-1), padding="valid"
            )
            outputs = ops.reshape(outputs, (-1, height, width, 2, 2, self.filters))
            outputs = ops.transpose(outputs, (0, 1, 3, 2, 4, 5))
        else:
            rows = []
            for a in range(2):
                phases = []
                for b in range(2):
                    window = padded[:, a : a + height + 1, b : b + width + 1, :]
                    phases.append(ops.conv(window, sub_kernels[a][b], padding="valid"))
                rows.append(ops.stack(phases, axis=3))  # (N, H, W, 2, C)
            outputs = ops.stack(rows, axis=2)  # (N, H, 2, W, 2, C)
        return ops.reshape(outputs, (-1, 2 * height, 2 * width, self.filters))

    def compute_output_shape(self, input_shape):
        height = None if input_shape[1] is None else 2 * input_shape[1]
        width = None if input_shape[2] is None else 2 * input_shape[2]
        return (input_shape[0], height, width, self.filters)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="ebgan_keras")
class LayerNormalization(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` whose second derivative is right everywhere.

    Same weights, config and forward values as Keras's layer. Keras computes
    the statistics on TensorFlow with `tf.nn.moments`, which takes the
    variance around a `stop_gradient` of the mean: the first derivative is
    exact (the variance's derivative with respect to its mean is zero at the
    mean) but the derivative of that derivative misses terms. A gradient
    penalty differentiates the critic's input gradient again, and measured
    here, one WGAN-GP step of a layer-normalized critic then moved weights by
    up to 2e-3 away from JAX and PyTorch (which agreed to 1e-7). The
    statistics here are plain `keras.ops` means, differentiable twice on
    every backend. Use it in critics under a gradient penalty.

    Args:
        **kwargs: the arguments of `keras.layers.LayerNormalization`.
    """

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        mean = ops.mean(x, axis=axes, keepdims=True)
        centred = x - mean
        variance = ops.mean(ops.square(centred), axis=axes, keepdims=True)
        outputs = centred * ops.rsqrt(variance + self.epsilon)
        shape = [1] * len(x.shape)
        for axis in axes:
            shape[axis] = x.shape[axis]
        if self.gamma is not None:
            outputs = outputs * ops.reshape(ops.cast(self.gamma, "float32"), shape)
        if self.beta is not None:
            outputs = outputs + ops.reshape(ops.cast(self.beta, "float32"), shape)
        return ops.cast(outputs, self.compute_dtype)


def upsample_conv(filters: int, use_bias: bool = True, name: str | None = None):
    """The library's stride-2 learned upsampling, fast on every backend.

    Args:
        filters: int. Output channels.
        use_bias: bool. Add a bias. Defaults to `True`.
        name: str. Layer name. Defaults to `None`.

    Returns:
        A `FastConv2DTranspose` layer (4x4 kernel, stride 2, "same").
    """
    return FastConv2DTranspose(filters, use_bias=use_bias, name=name)

"""The private Keras attributes the library uses, in one place.

Keras keeps a few mechanics private that the library needs: walking every
layer of a network (nested models included), the epoch a resumed `fit`
starts from, the health-check timings of a multi-worker `tf.distribute`
strategy, and saving a `.keras` archive into memory. Each is used here and
nowhere else, so a Keras release that renames one breaks one module.
"""

from __future__ import annotations


def walk_layers(network, include_self: bool = True) -> list:
    """Every layer of a network, nested models' layers included.

    Args:
        network: a `keras.Layer` (usually a `keras.Model`).
        include_self: bool. Whether `network` itself is in the list.
            Defaults to `True`.

    Returns:
        A list of layers, depth first (Keras' `_flatten_layers`).

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> [type(layer).__name__ for layer in walk_layers(model, False)]
    ['Dense']
    """
    return list(network._flatten_layers(include_self=include_self))


def set_initial_epoch(model, epoch: int) -> None:
    """Makes the running `fit` of `model` start at `epoch` (a resumed run).

    Keras' `BackupAndRestore` sets the model's private `_initial_epoch`,
    which the backend trainers read when `fit` starts its epochs.

    Args:
        model: the `keras.Model` being fitted.
        epoch: int. The epoch to start at.
    """
    model._initial_epoch = int(epoch)


def bound_health_checks(timeout_s: float) -> None:
    """Bounds the peer health checks of TensorFlow's multi-worker strategy.

    `MultiWorkerMirroredStrategy` checks its peers' health in a background
    thread (started by its constructor) and aborts the collectives of a
    cluster that lost one. Its defaults (a check every 30 s, 3 tries of 10 s,
    and no limit on the wait for all workers at start) are private class
    attributes; they are set here to a check every `timeout_s / 4`, 3 tries
    of `timeout_s / 4` each, and 5 x `timeout_s` for the start. Call it
    before constructing the strategy.

    Args:
        timeout_s: float. The cluster's timeout, in seconds.
    """
    from tensorflow.python.distribute import collective_all_reduce_strategy

    extended = collective_all_reduce_strategy.CollectiveAllReduceExtended
    extended._check_health_interval = max(timeout_s / 4, 1)
    extended._check_health_timeout = max(int(timeout_s / 4), 1)
    extended._check_health_initial_timeout = max(int(timeout_s), 1) * 5


def save_model_to_buffer(model, buffer) -> None:
    """Writes a model's `.keras` archive into a file object (e.g. `io.BytesIO`).

    `keras.saving.save_model` takes only paths ending in `.keras`; the
    private `saving_lib.save_model` that it calls also takes a file object.

    Args:
        model: a `keras.Model`.
        buffer: a writable binary file object.
    """
    from keras.src.saving import saving_lib

    saving_lib.save_model(model, buffer)


__all__ = [
    "bound_health_checks",
    "save_model_to_buffer",
    "set_initial_epoch",
    "walk_layers",
]

"""The training data of a run as one seeded stream, whatever iterates it."""

from __future__ import annotations


class ReplayedStream:
    """The batches of one iterator of `stream`, replayed to each new iterator.

    `ek.data`'s seeded shuffle reshuffles each iteration: the k-th iterator
    of the pipeline reads the k-th order. Keras creates iterators before the
    one it trains on (peeks at a batch), more of them under a `tf.distribute`
    strategy than without, so a distributed run would train on another order
    than one process. This generator function (for
    `tf.data.Dataset.from_generator`) reads one iterator of `stream`, the
    first: each call replays the batches drawn so far, then continues; once
    a later call starts, the earlier ones stop. So every run, distributed or
    not, trains on the first order of its seed, and only the batches of the
    peeks (their prefetch included) are held in memory.
    """

    def __init__(self, stream) -> None:
        import threading

        self.iterator = iter(stream)
        self.seen = []
        self.generation = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.generation += 1
            generation = self.generation
            if self.seen is None:
                raise RuntimeError(
                    "the training data was iterated again after more than "
                    f"{REPLAYED_BATCHES} batches; its order would differ from "
                    "one process's"
                )
            replay = list(self.seen)
        yield from replay
        while True:
            with self.lock:
                if generation != self.generation:
                    return  # a newer iterator took over
                try:
                    batch = next(self.iterator)
                except StopIteration:
                    return
                if self.seen is not None:
                    self.seen.append(batch)
                    if len(self.seen) > REPLAYED_BATCHES:
                        self.seen = None  # training is under way: no copies
            yield batch


#: Batches `ReplayedStream` keeps for a later iterator (Keras's peek and its
#: prefetch draw a few).
REPLAYED_BATCHES = 64


def replayed(stream):
    """`stream` as a dataset whose every iterator reads its first order
    (`ReplayedStream`)."""
    if not hasattr(stream, "prefetch"):
        # An `ek.data.Batches` (no TensorFlow): index-addressed, every
        # iterator reads the same batches, so there is nothing to replay.
        return stream
    import tensorflow as tf

    return tf.data.Dataset.from_generator(
        ReplayedStream(stream), output_signature=stream.element_spec
    )


__all__ = ["REPLAYED_BATCHES", "ReplayedStream", "replayed"]

"""Byte accounting: what every collective sends and receives, per collective kind.

Counters are int64 tf.Variables updated inside the collective wrappers, so they count
in eager mode and inside tf.function alike. The figures are the payload bytes each
rank sends to and receives from *other* ranks under the collective's usual algorithm:

  allgather      sends its own bytes to N-1 peers; receives everyone else's
  alltoall       sends the blocks addressed to other ranks; receives theirs
  allreduce      ring all-reduce: sends and receives 2 (N-1)/N of the tensor
  broadcast      the root sends the tensor to N-1 peers; the others receive it once
  reduce_scatter an alltoall of the blocks, summed by the receiver
"""

from __future__ import annotations

import functools

import tensorflow as tf

KINDS = ("allgather", "alltoall", "allreduce", "broadcast", "reduce_scatter")


class ByteCounters:
    """Cumulative bytes sent / received by this rank, per collective kind."""

    def __init__(self):
        with tf.init_scope():
            self._sent = {k: tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name=f"des_sent_{k}") for k in KINDS}
            self._received = {k: tf.Variable(0, dtype=tf.int64, trainable=False,
                                             name=f"des_received_{k}") for k in KINDS}

    def add(self, kind: str, sent: tf.Tensor, received: tf.Tensor) -> None:
        """Adds one call's bytes (int64 scalars)."""
        self._sent[kind].assign_add(tf.cast(sent, tf.int64))
        self._received[kind].assign_add(tf.cast(received, tf.int64))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{"sent": {kind: bytes}, "received": {kind: bytes}} as Python ints."""
        return {"sent": {k: int(v.numpy()) for k, v in self._sent.items()},
                "received": {k: int(v.numpy()) for k, v in self._received.items()}}

    def reset(self) -> None:
        for variable in (*self._sent.values(), *self._received.values()):
            variable.assign(0)


@functools.lru_cache(maxsize=None)
def counters() -> ByteCounters:
    """The process-wide counters (created on first use)."""
    return ByteCounters()


def nbytes(x: tf.Tensor) -> tf.Tensor:
    """Payload bytes of a tensor, as an int64 scalar (dynamic shapes welcome)."""
    return tf.size(x, out_type=tf.int64) * x.dtype.size

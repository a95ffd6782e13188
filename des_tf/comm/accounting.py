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
    """Cumulative bytes sent / received by this rank, per collective kind: one int64
    [2, kinds] variable (row 0 sent, row 1 received), so a snapshot is one read. Keras
    callbacks take one before and after every step (CommBytesLogger); per-kind
    variables cost an eager read each, a millisecond per step in all."""

    def __init__(self):
        with tf.init_scope(), tf.device("CPU:0"):
            self._bytes = tf.Variable(tf.zeros([2, len(KINDS)], tf.int64), trainable=False,
                                      name="des_comm_bytes")

    def add(self, kind: str, sent: tf.Tensor, received: tf.Tensor) -> None:
        """Adds one call's bytes (int64 scalars)."""
        column = KINDS.index(kind)
        self._bytes.assign_add(tf.scatter_nd(
            [[0, column], [1, column]],
            tf.stack([tf.cast(sent, tf.int64), tf.cast(received, tf.int64)]),
            [2, len(KINDS)]))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{"sent": {kind: bytes}, "received": {kind: bytes}} as Python ints."""
        sent, received = self._bytes.numpy().tolist()
        return {"sent": dict(zip(KINDS, sent)), "received": dict(zip(KINDS, received))}

    def reset(self) -> None:
        self._bytes.assign(tf.zeros_like(self._bytes))


@functools.lru_cache(maxsize=None)
def counters() -> ByteCounters:
    """The process-wide counters (created on first use)."""
    return ByteCounters()


def nbytes(x: tf.Tensor) -> tf.Tensor:
    """Payload bytes of a tensor, as an int64 scalar (dynamic shapes welcome)."""
    return tf.size(x, out_type=tf.int64) * x.dtype.size

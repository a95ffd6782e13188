"""The Horovod collectives DES is built from, with the semantics DES relies on.

Every function works eagerly and inside `tf.function`, and is differentiable
through Horovod's registered gradients. All ranks must call the same
collectives in the same order with matching shapes (apart from the first
dimension of `allgather`).
"""

from __future__ import annotations

import horovod.tensorflow as hvd
import tensorflow as tf

from des_tf.comm.runtime import init


def allgather(x: tf.Tensor) -> tf.Tensor:
    """Concatenates every rank's `x` along axis 0, in rank order; first dims may differ."""
    init()
    return hvd.allgather(x)


def allreduce(x: tf.Tensor, average: bool = False) -> tf.Tensor:
    """Elementwise sum (or mean with `average=True`) of `x` over all ranks."""
    init()
    return hvd.allreduce(x, op=hvd.Average if average else hvd.Sum)


def reduce_scatter(x: tf.Tensor) -> tf.Tensor:
    """Sums `x` over ranks and returns this rank's block of rows.

    Rows are split in rank order as evenly as possible; when `rows % size != 0` the
    first `rows % size` ranks get one extra row (Horovod's rule).
    """
    init()
    return hvd.reducescatter(x, op=hvd.Sum)

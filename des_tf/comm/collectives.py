"""The Horovod collectives DES is built from, with the semantics DES relies on.

Every function works eagerly and inside `tf.function`, and adds its bytes to
`des_tf.comm.accounting.counters()`. All ranks must call the same collectives in the
same order (Horovod reports mismatched shapes or dtypes as an error on every rank; the
mesh, rows of another size).
In a job of one rank each is the identity (no Horovod op, so no wait for Horovod's
background cycle) and moves no byte. `comm_dtype` (des_tf.comm.wire) is the wire format
of a float32 payload: counters count the bytes that really travel. The transport is
des_tf.comm.mesh (its alltoall, allgather and one-round allreduce, from which the others
are built), or with DES_TF_TRANSPORT=horovod Horovod's collectives (runtime.transport);
broadcast, used while variables are created, is Horovod's in both.
"""

from __future__ import annotations

import horovod.tensorflow as hvd
import tensorflow as tf

from des_tf.comm import mesh, wire
from des_tf.comm.accounting import counters, nbytes
from des_tf.comm.runtime import MESH, init, transport


def _alltoall(x: tf.Tensor, splits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The transport's alltoall: (rows received in rank order, their counts)."""
    if transport() == MESH:
        return mesh.alltoall(x, splits)
    return hvd.alltoall(x, splits=splits)


def _allgather(x: tf.Tensor) -> tf.Tensor:
    """The transport's allgather."""
    return mesh.allgather(x) if transport() == MESH else hvd.allgather(x)


def allgather(x: tf.Tensor, comm_dtype: str = wire.FLOAT32) -> tf.Tensor:
    """Concatenates every rank's `x` along axis 0, in rank order; first dims may differ."""
    init()
    if hvd.size() == 1:
        return tf.convert_to_tensor(x)
    sent = wire.encode(tf.convert_to_tensor(x), comm_dtype)
    gathered = _allgather(sent)
    own = nbytes(sent)
    counters().add("allgather", own * (hvd.size() - 1), nbytes(gathered) - own)
    return wire.decode(gathered, comm_dtype)


def broadcast(x: tf.Tensor, root: int = 0) -> tf.Tensor:
    """Rank `root`'s `x` on every rank (the root sends it to N-1 peers)."""
    init()
    x = tf.convert_to_tensor(x)
    if hvd.size() == 1:
        return x
    is_root = hvd.rank() == root
    counters().add("broadcast", nbytes(x) * (hvd.size() - 1) if is_root else 0,
                   0 if is_root else nbytes(x))
    return hvd.broadcast(x, root_rank=root)


def allreduce(x: tf.Tensor, average: bool = False, comm_dtype: str = wire.FLOAT32
              ) -> tf.Tensor:
    """Elementwise sum (or mean with `average=True`) of `x` over all ranks. On the mesh
    with 2 ranks, unencoded, it is one round (each rank sends x to the other and adds
    both in rank order): the ring's bytes and the same bits on both ranks. Otherwise,
    in a 16-bit `comm_dtype` or on the mesh, it is a reduce-scatter (summed in float32
    for floats), then an allgather of the sums: the ring's bytes, one rounding per hop,
    and the same result on every rank."""
    init()
    x = tf.convert_to_tensor(x)
    size = hvd.size()
    if size == 1:
        return x
    ring = nbytes(x) * 2 * (size - 1) // size
    exact = wire.check(comm_dtype) == wire.FLOAT32
    if exact and transport() != MESH:
        counters().add("allreduce", ring, ring)
        return hvd.allreduce(x, op=hvd.Average if average else hvd.Sum)
    if exact and size == 2:
        counters().add("allreduce", ring, ring)
        total = mesh.allreduce(x)
        return total / size if average else total
    flat = tf.reshape(x, [-1])
    block = (tf.size(flat) + size - 1) // size
    padded = tf.pad(flat, [[0, block * size - tf.size(flat)]])
    received, _ = _alltoall(wire.encode(padded, comm_dtype), tf.fill([size], block))
    sums = tf.reduce_sum(tf.reshape(wire.decode(received, comm_dtype), [size, block]), 0)
    sent = wire.encode(sums / size if average else sums, comm_dtype)
    gathered = _allgather(sent)
    hops = 2 * (size - 1) * nbytes(sent)
    counters().add("allreduce", hops, hops)
    return tf.reshape(wire.decode(gathered, comm_dtype)[:tf.size(flat)], tf.shape(x))


def alltoall(x: tf.Tensor, splits: tf.Tensor, comm_dtype: str = wire.FLOAT32
             ) -> tuple[tf.Tensor, tf.Tensor]:
    """Sends rows splits[r] of `x` (in order) to rank r; returns (received rows, their
    per-sender counts). Received rows are ordered by sending rank."""
    init()
    splits = tf.cast(splits, tf.int32)
    if hvd.size() == 1:
        return tf.convert_to_tensor(x), splits
    sent = wire.encode(tf.convert_to_tensor(x), comm_dtype)
    received, received_splits = _alltoall(sent, splits)
    row_bytes = (nbytes(sent[:1]) if sent.shape.rank > 1
                 else tf.constant(sent.dtype.size, tf.int64))
    own_sent = tf.cast(splits[hvd.rank()], tf.int64) * row_bytes
    own_received = tf.cast(received_splits[hvd.rank()], tf.int64) * row_bytes
    counters().add("alltoall", nbytes(sent) - own_sent, nbytes(received) - own_received)
    return wire.decode(received, comm_dtype), received_splits


def reduce_scatter(x: tf.Tensor, counts: tf.Tensor | None = None,
                   comm_dtype: str = wire.FLOAT32) -> tf.Tensor:
    """Sums `x` over ranks (in float32) and returns this rank's block of rows.

    With `counts` (rows per rank, summing to len(x)), rank r receives rows
    [sum(counts[:r]), sum(counts[:r+1])) of the sum; this is an alltoall of the blocks
    followed by a local sum, so blocks may be uneven and empty. Without `counts`, rows
    are split as evenly as possible and the first `rows % size` ranks get one extra row
    (Horovod's rule).
    """
    init()
    x = tf.convert_to_tensor(x)
    size = hvd.size()
    if size == 1:
        return x
    if counts is None:
        rows = tf.shape(x, out_type=tf.int64)[0]
        counts = rows // size + tf.cast(tf.range(size, dtype=tf.int64) < rows % size, tf.int64)
    counts = tf.cast(counts, tf.int32)
    sent = wire.encode(x, comm_dtype)
    row_bytes = tf.reduce_prod(tf.shape(x, out_type=tf.int64)[1:]) * sent.dtype.size
    own_rows = tf.cast(counts[hvd.rank()], tf.int64)
    counters().add("reduce_scatter", (tf.cast(tf.reduce_sum(counts), tf.int64) - own_rows)
                   * row_bytes, own_rows * (size - 1) * row_bytes)
    received = wire.decode(_alltoall(sent, counts)[0], comm_dtype)
    blocks = tf.reshape(received, tf.concat([[size, counts[hvd.rank()]], tf.shape(x)[1:]], 0))
    return tf.reduce_sum(blocks, axis=0)

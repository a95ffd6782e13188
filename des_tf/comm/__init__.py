"""Communication between ranks: Horovod start-up, the collectives DES needs, and
the byte counters they feed."""

from des_tf.comm.accounting import counters
from des_tf.comm.logging_callback import CommBytesLogger
from des_tf.comm.collectives import allgather, allreduce, alltoall, broadcast, reduce_scatter
from des_tf.comm.runtime import init, rank, size

__all__ = [
    "CommBytesLogger",
    "allgather",
    "allreduce",
    "alltoall",
    "broadcast",
    "counters",
    "init",
    "rank",
    "reduce_scatter",
    "size",
]

"""Communication between ranks: Horovod start-up and the collectives DES needs."""

from des_tf.comm.collectives import allgather, allreduce, reduce_scatter
from des_tf.comm.runtime import init, rank, size

__all__ = [
    "allgather",
    "allreduce",
    "init",
    "rank",
    "reduce_scatter",
    "size",
]

"""Communication between ranks: Horovod start-up, the collectives DES needs, and
the byte counters they feed."""

from des_tf.comm.accounting import counters
from des_tf.comm.agreement import ConfigMismatchError, assert_same_config, failures, gather_json
from des_tf.comm.logging_callback import CommBytesLogger
from des_tf.comm.collectives import allgather, allreduce, alltoall, broadcast, reduce_scatter
from des_tf.comm.liveness import RankLostError, naming_lost_ranks
from des_tf.comm.runtime import init, rank, size

__all__ = [
    "CommBytesLogger",
    "ConfigMismatchError",
    "RankLostError",
    "allgather",
    "allreduce",
    "assert_same_config",
    "alltoall",
    "broadcast",
    "counters",
    "failures",
    "gather_json",
    "init",
    "naming_lost_ranks",
    "rank",
    "reduce_scatter",
    "size",
]

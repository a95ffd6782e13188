"""Communication between ranks: Horovod start-up, the collectives DES needs, and
the byte counters they feed. Names load on first use, so the TF-free modules here
(`des_tf.comm.cost`) import without TensorFlow or Horovod."""

from des_tf import lazy_names

_NAMES = {name: f"des_tf.comm.{module}" for name, module in {
    "CommBytesLogger": "logging_callback",
    "ConfigMismatchError": "agreement",
    "RankLostError": "liveness",
    "allgather": "collectives",
    "allreduce": "collectives",
    "alltoall": "collectives",
    "assert_same_config": "agreement",
    "broadcast": "collectives",
    "counters": "accounting",
    "failures": "agreement",
    "gather_json": "agreement",
    "init": "runtime",
    "naming_lost_ranks": "liveness",
    "rank": "runtime",
    "reduce_scatter": "collectives",
    "round_bytes": "runtime",
    "size": "runtime",
}.items()}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    return lazy_names.resolve(__name__, globals(), name, _NAMES)


def __dir__() -> list[str]:
    return sorted(__all__)

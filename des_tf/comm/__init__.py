"""Communication between ranks: Horovod start-up, the collectives DES needs, and
the byte counters they feed. Names load on first use, so the TF-free modules here
(`des_tf.comm.cost`) import without TensorFlow or Horovod."""

import importlib
import importlib.util

_NAMES = {
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
    "size": "runtime",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"des_tf.comm.{_NAMES[name]}"), name)
    if importlib.util.find_spec(f"des_tf.comm.{name}") is not None:  # a submodule
        return importlib.import_module(f"des_tf.comm.{name}")
    raise AttributeError(f"module 'des_tf.comm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

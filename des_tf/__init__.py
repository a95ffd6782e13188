"""des-tf: synchronous Distributed Equivalent Substitution training for TensorFlow/Keras.

Each weight-rich operator runs on the rank that owns its weights and only small
partial results cross the network (see README.md and docs/design.md).

Submodules and names load on first use, so `import des_tf.comm.cost` (pure arithmetic)
needs neither TensorFlow nor Horovod.
"""

import importlib
import importlib.util

__version__ = "0.1.0"

_SUBMODULES = ("checkpoint", "comm", "data", "layers", "models", "optimizers", "tables")
_NAMES = {"DESStrategy": "des_tf.strategy", "predict_global": "des_tf.prediction",
          "shard_owner": "des_tf.sharding"}

__all__ = ["DESStrategy", *_SUBMODULES, "predict_global", "shard_owner", "__version__"]


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _SUBMODULES or importlib.util.find_spec(f"des_tf.{name}") is not None:
        return importlib.import_module(f"des_tf.{name}")
    raise AttributeError(f"module 'des_tf' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

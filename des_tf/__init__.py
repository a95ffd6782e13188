"""des-tf: synchronous Distributed Equivalent Substitution training for TensorFlow/Keras.

Each weight-rich operator runs on the rank that owns its weights and only small
partial results cross the network (see README.md and docs/design.md).

Submodules and names load on first use (des_tf.lazy_names), so `import des_tf.comm.cost`
(pure arithmetic) needs neither TensorFlow nor Horovod.
"""

from des_tf import lazy_names

__version__ = "0.1.0"

_NAMES = {"DESStrategy": "des_tf.strategy", "predict_global": "des_tf.prediction",
          "shard_owner": "des_tf.sharding", "summary": "des_tf.model_summary"}

__all__ = ["DESStrategy", "callbacks", "checkpoint", "comm", "data", "layers", "models",
           "optimizers", "predict_global", "shard_owner", "summary", "tables",
           "__version__"]


def __getattr__(name: str):
    return lazy_names.resolve(__name__, globals(), name, _NAMES)


def __dir__() -> list[str]:
    return sorted(__all__)

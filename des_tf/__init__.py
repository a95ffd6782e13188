"""des-tf: synchronous Distributed Equivalent Substitution training for TensorFlow/Keras.

Each weight-rich operator runs on the rank that owns its weights and only small
partial results cross the network (see README.md and docs/design.md).
"""

from des_tf import checkpoint, comm, data, layers, models, optimizers, tables
from des_tf.prediction import predict_global
from des_tf.sharding import shard_owner
from des_tf.strategy import DESStrategy

__version__ = "0.1.0"

__all__ = ["DESStrategy", "checkpoint", "comm", "data", "layers", "models", "optimizers",
           "predict_global", "shard_owner", "tables", "__version__"]

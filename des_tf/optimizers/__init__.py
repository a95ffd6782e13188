"""Optimizers: sparse (in-table) optimizer configurations for embedding tables, and the
loss-scale optimizer that mixed_float16 training with DES layers needs."""

from des_tf.optimizers.loss_scale import LossScaleOptimizer
from des_tf.optimizers.sparse import SGD, Adagrad, Adam, Ftrl, SparseOptimizer, deserialize

__all__ = ["LossScaleOptimizer", "SGD", "Adagrad", "Adam", "Ftrl", "SparseOptimizer", "deserialize"]

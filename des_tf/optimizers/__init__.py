"""Optimizers: sparse (in-table) optimizer configurations for embedding tables."""

from des_tf.optimizers.sparse import SGD, Adagrad, Adam, Ftrl, SparseOptimizer, deserialize

__all__ = ["SGD", "Adagrad", "Adam", "Ftrl", "SparseOptimizer", "deserialize"]

"""ServedTable: the rows of one trained table frozen for serving in TensorFlow's own ops
(a MutableHashTable from key to row index and a variable of rows, a zero row for keys
never trained), so a served model loads in stock TensorFlow Serving, without des-tf."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class ServedTable(tf.Module):
    """keys [n] -> values [n, dim]; `find` reads absent keys as zero rows. Both the index
    and the rows are saved as SavedModel variables (not graph constants), so a table's
    size is bounded by memory, not by the 2 GB limit of a graph."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, name: str):
        super().__init__(name=name)
        rows, dim = values.shape
        self.dim = dim
        self.rows = tf.Variable(np.concatenate([values, np.zeros([1, dim], np.float32)]),
                                trainable=False, name="rows")
        self.index = tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.int64, default_value=rows, name="index")
        self.index.insert(tf.constant(keys, tf.int64), tf.range(rows, dtype=tf.int64))

    def find(self, keys: tf.Tensor) -> tf.Tensor:
        """Rows of `keys` (shape keys.shape + [dim]); absent keys read as zeros."""
        return tf.gather(self.rows, self.index.lookup(tf.cast(keys, tf.int64)))

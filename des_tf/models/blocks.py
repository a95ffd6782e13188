"""Dense building blocks shared by the CTR models (replicated on every rank)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


def mlp(hidden: Sequence[int], name: str) -> keras.Sequential:
    """ReLU layers of the given widths (an empty sequence is the identity)."""
    return keras.Sequential([keras.layers.Dense(w, activation="relu") for w in hidden],
                            name=name)


class CrossLayer(keras.layers.Layer):
    """One DCN-v2 cross layer: x_{l+1} = x_0 * (W x_l + b) + x_l."""

    def build(self, input_shape):
        width = input_shape[-1]
        self.kernel = self.add_weight(shape=(width, width), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(width,), initializer="zeros", name="bias")

    def call(self, x0, x):
        return x0 * (tf.matmul(x, self.kernel) + self.bias) + x


def pairwise_dots(vectors: tf.Tensor) -> tf.Tensor:
    """DLRM interactions: the dot products of every pair of the [batch, n, d] vectors
    (i < j), flattened to [batch, n (n - 1) / 2]."""
    n = vectors.shape[1]
    dots = tf.reshape(tf.matmul(vectors, vectors, transpose_b=True), [-1, n * n])
    upper = np.flatnonzero(np.triu(np.ones((n, n), bool), k=1))  # static, so widths are known
    return tf.gather(dots, upper, axis=1)

"""SparseLinear: the LR term sum_k w_k x_k + b over all fields, substituted by DES."""

from __future__ import annotations

import keras
import tensorflow as tf

from des_tf.layers.base import DESLayer


@keras.saving.register_keras_serializable(package="des_tf")
class SparseLinear(DESLayer):
    """Sparse linear (logistic-regression) term: one scalar weight per id, summed over the
    ids of all fields, plus a replicated bias. Output [batch, 1].

    Call with `ids` (and optional `weights`) as for ShardedEmbedding. Rows start at zero
    unless `initializer` says otherwise. **kwargs: see DESLayer.
    """

    cost_kind = "linear"

    def __init__(self, *, initializer: str = "zeros", **kwargs):
        super().__init__(1, initializer=initializer, **kwargs)
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def get_config(self) -> dict:
        config = super().get_config()
        del config["dim"]  # always 1
        return config

    def symbolic_output(self, samples, num_fields):
        return tf.zeros([samples, 1])

    def des_call(self, ids, weights, training):
        entries = self._exchange(self._fields(ids, weights), per_field=False)
        return self._partials(entries, training) + self.bias

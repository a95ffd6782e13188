"""SparseLinear: the LR term sum_k w_k x_k + b over all fields, substituted by DES."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from des_tf.layers import combiners
from des_tf.layers.base import DESLayer


@keras.saving.register_keras_serializable(package="des_tf")
class SparseLinear(DESLayer):
    """Sparse linear (logistic-regression) term: one scalar weight per id, pooled per field
    by its combiner and summed over the fields, plus a replicated bias. Output [batch, 1].

    Call with `ids` (and optional `weights`) as for ShardedEmbedding. Rows start at zero
    unless `initializer` says otherwise.

    Args:
      combiner: as ShardedEmbedding's, one for all fields or one per field. With "sum"
        everywhere (the default) each owner sends one partial per sample; otherwise one
        per (sample, field), divided by its field's divisor where the sample is held (a
        long "mean" list then weighs like one id instead of hundreds).
      **kwargs: see DESLayer.
    """

    cost_kind = "linear"

    def __init__(self, *, combiner: str | Sequence[str] = "sum", initializer: str = "zeros",
                 **kwargs):
        combiner = combiners.validated(combiner)
        super().__init__(1, initializer=initializer, **kwargs)
        self.combiner = combiner
        if not combiners.pools_by_sum(combiner):
            self.cost_kind = "embedding"  # one partial per (sample, field), of width 1
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")

    def get_config(self) -> dict:
        config = {**super().get_config(), "combiner": self.combiner}
        del config["dim"]  # always 1
        return config

    def symbolic_output(self, samples, num_fields):
        return tf.zeros([samples, 1])

    def des_call(self, ids, weights, training):
        fields = self._fields(ids, weights)
        per_field = combiners.per_field(self.combiner, fields.count, self.name)
        if combiners.pools_by_sum(per_field):
            return self._partials(self._exchange(fields, per_field=False), training) + self.bias
        terms = tf.reshape(self._partials(self._exchange(fields, per_field=True), training),
                           [-1, fields.count])
        terms = terms / self.combiner_divisors(fields, per_field)
        return tf.reduce_sum(terms, axis=1, keepdims=True) + self.bias

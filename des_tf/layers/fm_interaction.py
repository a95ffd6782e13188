"""FMInteraction: the factorisation-machine second-order term, substituted by DES."""

from __future__ import annotations

import keras
import tensorflow as tf

from des_tf.layers.base import DESLayer


@keras.saving.register_keras_serializable(package="des_tf")
class FMInteraction(DESLayer):
    """1/2 sum_j [(sum_k x_k v_kj)^2 - sum_k x_k^2 v_kj^2] over the ids of all fields.

    Each owner sends two partials per sample, a = sum x_k v_k (dim floats) and
    b = sum x_k^2 ||v_k||^2 (one float); after the sum over ranks the output is
    1/2 (||a||^2 - b), shape [batch, 1]. Call as ShardedEmbedding. **kwargs: see DESLayer.
    """

    cost_kind = "fm"

    def symbolic_output(self, samples, num_fields):
        return tf.zeros([samples, 1])

    def des_call(self, ids, weights, training):
        entries = self._exchange(self._fields(ids, weights), per_field=False)
        partials = self._partials(entries, training, with_square_norms=True)
        sums, square_norms = partials[:, :self.dim], partials[:, self.dim:]
        return 0.5 * (tf.reduce_sum(tf.square(sums), axis=1, keepdims=True) - square_norms)

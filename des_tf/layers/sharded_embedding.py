"""ShardedEmbedding: pooled embedding lookups per field, substituted by DES."""

from __future__ import annotations

import keras
import tensorflow as tf

from des_tf.layers.base import DESLayer

COMBINERS = ("sum", "mean", "sqrtn")
OUTPUTS = ("stack", "concat", "list")


@keras.saving.register_keras_serializable(package="des_tf")
class ShardedEmbedding(DESLayer):
    """Pools each field's ids into one embedding: sum_k x_k v_k (then / sum x or
    / sqrt(sum x^2) for "mean" / "sqrtn"), with rows sharded over ranks by key.

    Call with `ids`: one field or a list / dict of fields, each a ragged [batch, None] or
    sparse [batch, n] int64 tensor, or a dense int64 [batch] (one id per sample); and
    optionally `weights` of the same structure (x_k; 1 when omitted). All fields share
    this layer's table: salt ids by field upstream if fields must not share rows.

    Args:
      dim: embedding width.
      combiner: "sum", "mean" or "sqrtn"; an empty id list pools to zeros.
      output: "stack" -> [batch, fields, dim], "concat" -> [batch, fields * dim],
        "list" -> one [batch, dim] tensor per field.
      plan: the execution plan, chosen per layer (all ranks alike); all three train to the
        same numbers as one process on the global batch and share the table and this code:
        "des" (default): dense DES. Ids reach their owners (the strategy's input mode),
          each owner pools its ids for every (sample, field) of the global batch and a
          reduce-scatter sums the partials: (N-1)/N * N*B * fields * dim floats each way
          per rank, growing with N. Best for heavily multi-hot fields at small N.
        "alltoall": sparse aggregation. Ids reach their owners as in "des"; each owner
          sends only the (sample, field) partials it has ids for, with their indices, to
          the rank holding the sample, which sums them; the backward returns exactly those
          rows' gradients to their owners. For one-hot fields this is the alltoall of
          pooled embeddings (TorchRec / SOK); its bytes do not grow with N.
        "replicated": every rank holds a copy of the whole table and pools its own
          samples locally (no id or partial moves); the keys and row gradients of every
          rank are allgathered and each copy applies them identically, so copies never
          diverge. For small tables (a few thousand rows). No `row_budget`.
        "auto": one of the three, picked by the cost model from the ids of the first
          batch (all ranks alike; see des_tf.layers.planner); give `vocabulary_size` to
          let it consider "replicated". `plan_in_effect` holds the choice.
      **kwargs: see DESLayer (table_optimizer, initializer, ...).
    """

    def __init__(self, dim: int, combiner: str = "sum", output: str = "stack",
                 plan: str | None = None, **kwargs):
        if combiner not in COMBINERS:
            raise ValueError(f"combiner must be one of {COMBINERS}, got {combiner!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        super().__init__(dim, plan=plan, **kwargs)
        self.combiner, self.output_format = combiner, output

    def get_config(self) -> dict:
        return {**super().get_config(), "combiner": self.combiner, "output": self.output_format}

    def des_call(self, ids, weights, training):
        fields = self._fields(ids, weights)
        entries = self._exchange(fields, per_field=True)
        pooled = tf.reshape(self._partials(entries, training), [-1, fields.count, self.dim])
        if self.combiner != "sum":
            pooled = pooled / self._normalizer(fields)[:, :, None]
        return self._format(pooled, fields.count)

    def symbolic_output(self, samples, num_fields):
        return self._format(tf.zeros([samples, num_fields, self.dim]), num_fields)

    def _format(self, pooled: tf.Tensor, num_fields: int):
        if self.output_format == "concat":
            return tf.reshape(pooled, [-1, num_fields * self.dim])
        if self.output_format == "list":
            return tf.unstack(pooled, num=num_fields, axis=1)
        return pooled

    def _normalizer(self, fields) -> tf.Tensor:
        """Per (own sample, field) divisor: sum of x (mean) or sqrt(sum of x^2) (sqrtn);
        1 for an empty id list so it pools to zeros. Known locally: no communication."""
        segments, weights = fields.segments(per_field=True)
        x = tf.ones_like(segments, tf.float32) if weights is None else weights
        total = tf.reduce_sum(x if self.combiner == "mean" else x * x, axis=1)
        total = total if self.combiner == "mean" else tf.sqrt(total)
        total = tf.where(tf.equal(total, 0.0), tf.ones_like(total), total)
        return self.own_rows(tf.reshape(total, [-1, fields.count]), fields.ids.nrows())

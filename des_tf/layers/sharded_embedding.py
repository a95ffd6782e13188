"""ShardedEmbedding: pooled embedding lookups per field, substituted by DES."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from des_tf.layers import combiners
from des_tf.layers.base import DESLayer

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
      combiner: "sum", "mean" or "sqrtn" for every field, or a sequence of them with one
        per field in call order (dicts: sorted by key), e.g. ("sum", "mean") to sum a
        one-hot field and average a long id list; an empty id list pools to zeros (see
        des_tf.layers.combiners).
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
        "rows": each rank fetches from the owners the rows of its samples' distinct ids
          and pools locally; each distinct id's gradient goes back to its owner. About
          (N-1)/N * U * (8 + 2 * dim * 4) bytes each way for U distinct ids per rank:
          best for one-hot fields whose batches repeat popular ids.
        "auto": one of the four, picked by the cost model from the ids of the first
          batch (all ranks alike; see des_tf.layers.planner); give `vocabulary_size` to
          let it consider "replicated". `plan_in_effect` holds the choice.
      **kwargs: see DESLayer (table_optimizer, initializer, ...).
    """

    def __init__(self, dim: int, combiner: str | Sequence[str] = "sum", output: str = "stack",
                 plan: str | None = None, **kwargs):
        combiner = combiners.validated(combiner)
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
        per_field = combiners.per_field(self.combiner, fields.count, self.name)
        if not combiners.pools_by_sum(per_field):
            pooled = pooled / self.combiner_divisors(fields, per_field)[:, :, None]
        return self._format(pooled, fields.count)

    def symbolic_output(self, samples, num_fields):
        return self._format(tf.zeros([samples, num_fields, self.dim]), num_fields)

    def _format(self, pooled: tf.Tensor, num_fields: int):
        if self.output_format == "concat":
            return tf.reshape(pooled, [-1, num_fields * self.dim])
        if self.output_format == "list":
            return tf.unstack(pooled, num=num_fields, axis=1)
        return pooled

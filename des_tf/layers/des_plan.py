"""The "des" plan: dense DES aggregation (docs/design.md section 3).

Ids reach their owners (des_tf.layers.input_distribution); each owner looks up its rows
and computes partial sums for every segment of the global batch; a reduce-scatter sums
the partials so each rank gets its own segments. Backward: the gradients of the summed
partials are allgathered, each owner turns them into row gradients and applies its
table's sparse optimizer in place. A scalar "hook" variable, which the Keras optimizer
sees with a zero gradient, makes Keras' gradient tape run that backward.
"""

from __future__ import annotations

import tensorflow as tf

from des_tf import comm
from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.input_distribution import OwnedEntries, distinct_ids
from des_tf.layers.partials import partial_sums_grad
from des_tf.layers.plan import Plan, RowUpdate, partials_of, split_partials_grad
from des_tf.tables import DynamicTable


class DESPlan(Plan):
    """Every segment's partials reduce-scattered; bytes grow with N (see the module)."""

    name = ExecutionPlan.DES

    def partials(self, table: DynamicTable, entries: OwnedEntries, *, with_square_norms: bool,
                 training: bool, hook: tf.Variable, update: RowUpdate, comm_dtype: str,
                 sharding_seed: int) -> tf.Tensor:
        """Summed partials of this rank's segments: [segments, dim] (+1 column of FM square
        norms when `with_square_norms`). Differentiable through `hook` when training; the
        backward updates the table with `update` (then evicts to its row budget)."""
        unique_ids, row_ids = distinct_ids(entries)
        rows = table.lookup(unique_ids) if training else table.find(unique_ids)

        def local_partials(rows):
            return partials_of(rows, row_ids, entries, with_square_norms)

        if not training:
            return comm.reduce_scatter(local_partials(rows), entries.segment_counts,
                                       comm_dtype)

        @tf.custom_gradient
        def aggregate(hook_value):
            del hook_value

            def backward(upstream):
                everyone = comm.allgather(upstream, comm_dtype)  # all segments', rank order
                sums_grad, norms_grad = split_partials_grad(everyone, table.dim, with_square_norms)
                rows_grad = partial_sums_grad(sums_grad, norms_grad, rows, row_ids,
                                              entries.segment_ids, entries.weights)
                return update(table, unique_ids, rows_grad)

            return comm.reduce_scatter(local_partials(rows), entries.segment_counts,
                                       comm_dtype), backward

        return aggregate(tf.convert_to_tensor(hook))

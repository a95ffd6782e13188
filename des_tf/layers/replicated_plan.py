"""The "replicated" plan: the table is copied on every rank (for small tables).

Every rank looks up the ids of its own samples in its own copy and pools them locally:
no id and no partial crosses the network. Backward: each rank turns its output
gradients into row gradients (one per distinct key of its samples); the keys and row
gradients of all ranks are allgathered (the sparse gradient of the global batch), and
every rank applies them, in rank order, to its copy. Every rank applies the same
arrays in the same order (the table sums duplicate keys in input order), so the copies
stay bit-identical, and equal to single-process training on the global batch.

Bytes per rank: (N-1) * (distinct keys of its samples) * (8 + 4 * width) sent, about N
times that received; independent of the rows' owner, growing with N only through the
gathered gradients.

The rows' lookup frequencies count only each rank's own lookups, so they differ between
copies: row budgets (frequency-based eviction) are not offered in this plan.
"""

from __future__ import annotations

import tensorflow as tf

from des_tf import comm
from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.index_ops import unique
from des_tf.layers.input_distribution import OwnedEntries
from des_tf.layers.plan import Plan, RowUpdate, pooled_here
from des_tf.tables import DynamicTable


class ReplicatedPlan(Plan):
    """A copy of the table on every rank; no id or partial moves (see the module)."""

    name = ExecutionPlan.REPLICATED
    exchanges_ids = False
    supports_row_budget = False

    def partials(self, table: DynamicTable, entries: OwnedEntries, *, with_square_norms: bool,
                 training: bool, hook: tf.Variable, update: RowUpdate, comm_dtype: str,
                 sharding_seed: int) -> tf.Tensor:
        """Pooled partials of this rank's own segments, [segments, dim] (+1 FM column), from
        `entries` holding every id occurrence of those segments (local_entries)."""
        unique_ids, row_ids = unique(entries.ids, out_idx=tf.int64)
        rows = table.lookup(unique_ids) if training else table.find(unique_ids)
        return pooled_here(
            rows, row_ids, entries, with_square_norms=with_square_norms, training=training,
            hook=hook, dim=table.dim,
            apply_row_gradients=lambda rows_grad: update(
                table, comm.allgather(unique_ids), comm.allgather(rows_grad, comm_dtype),
                keys_on_one_rank=False))

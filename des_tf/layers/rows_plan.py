"""The "rows" plan: owners send the rows of each rank's distinct ids; ranks pool locally
(docs/design.md section 3.4).

No id occurrence moves. Each rank deduplicates the ids of its own samples and asks
each owner for the rows of the distinct ids it owns (one alltoall of int64 keys); every
owner looks up the keys it was asked for, each once however many ranks asked, and sends
the rows back (one alltoall of rows); each rank then pools its own segments from those
rows, as one process would. Backward: each rank turns its output gradients into one
gradient per distinct id and sends it to the id's owner (the reverse alltoall), which
sums the gradients of each key over the ranks and applies its table's optimizer in
place. Layers pooling the very same ids in one step (DeepFM's embedding and linear term)
share the request: the keys travel once, and only each table's rows and row gradients
are sent per layer.

Bytes per rank and step: about (N-1)/N * U * (8 + 2 * dim * 4) each way for U distinct
ids in its batch, whatever the number of fields or ids per sample. It beats pooled
partials (the "alltoall" plan) where a rank's batch repeats ids, as one-hot fields with
popular ids do (U well below the occurrences), and loses to them on long id lists,
whose pooling it no longer does at the owner. The traffic is a synchronous parameter
server's, without the servers: rows move, but only the owner updates them.
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from des_tf import comm
from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.index_ops import group_by_owner, unique
from des_tf.layers.input_distribution import OwnedEntries
from des_tf.layers.plan import Plan, RowUpdate, pooled_here
from des_tf.layers.traced_shares import TracedShares
from des_tf.tables import DynamicTable


class KeyRequest(NamedTuple):
    """The keys one rank asked the owners for, and those it was asked for as an owner."""

    row_ids: tf.Tensor       # int64 [E]: each occurrence's index into the keys sent
    splits: tf.Tensor        # int32 [size]: distinct ids sent to each owner, owner-major
    asked_splits: tf.Tensor  # int32 [size]: keys each rank asked of this one
    served_ids: tf.Tensor    # int64: the distinct keys asked of this rank
    served_index: tf.Tensor  # int64: each asked key's index into served_ids


# Key requests of the graph being traced, by (ids tensor, sharding seed): layers pooling
# the same ids (DeepFM's embedding and linear term) ask the owners once.
_REQUESTS = TracedShares()


def key_request(ids: tf.Tensor, sharding_seed: int) -> KeyRequest:
    """Sends the distinct `ids` of this rank to their owners (one int64 alltoall), or,
    within one traced step, reuses the request an earlier layer made for the very same
    ids tensor."""
    def build() -> KeyRequest:
        groups = group_by_owner(ids, comm.size(), sharding_seed, out_idx=tf.int64)
        asked, asked_splits = comm.alltoall(groups.distinct, groups.distinct_counts)
        served_ids, served_index = unique(asked, out_idx=tf.int64)
        return KeyRequest(groups.index, groups.distinct_counts, asked_splits, served_ids,
                          served_index)

    return _REQUESTS.share((ids, sharding_seed),
                           lambda key: key[0] is ids and key[1] == sharding_seed, build)[1]


class RowsPlan(Plan):
    """Rows of each rank's distinct ids fetched from their owners (see the module)."""

    name = ExecutionPlan.ROWS
    exchanges_ids = False

    def partials(self, table: DynamicTable, entries: OwnedEntries, *, with_square_norms: bool,
                 training: bool, hook: tf.Variable, update: RowUpdate, comm_dtype: str,
                 sharding_seed: int) -> tf.Tensor:
        """Pooled partials of this rank's own segments, [segments, dim] (+1 FM column), from
        `entries` holding every id occurrence of those segments (local_entries)."""
        request = key_request(entries.ids, sharding_seed)
        served = (table.lookup(request.served_ids) if training
                  else table.find(request.served_ids))
        rows, _ = comm.alltoall(tf.gather(served, request.served_index),
                                request.asked_splits, comm_dtype)

        def to_owners(rows_grad):
            received, _ = comm.alltoall(rows_grad, request.splits, comm_dtype)
            return update(table, request.served_ids, tf.math.unsorted_segment_sum(
                received, request.served_index, tf.size(request.served_ids, tf.int64)))

        return pooled_here(rows, request.row_ids, entries, with_square_norms=with_square_norms,
                           training=training, hook=hook, dim=table.dim,
                           apply_row_gradients=to_owners)

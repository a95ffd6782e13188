"""The "alltoall" plan: sparse aggregation of DES partials (docs/design.md section 3).

Ids reach their owners as in the dense DES plan (des_tf.layers.input_distribution).
Each owner pools its owned ids per segment (an output row: a (sample, field) pair for
embeddings, a sample for LR/FM) but, instead of a reduce-scatter
of every segment of the global batch (zeros included), sends only the segments it has
at least one id of, with their indices, to the rank that holds them (one alltoall of
partials, one of int32 indices); the receiver sums them into its [segments, width]
output. For one-hot fields this is the alltoall of pooled embeddings (TorchRec / SOK).
Bytes per rank no longer grow with N: about (non-empty owned segments) * (width + 1) * 4
each way, instead of (N-1)/N * N*B * width * 4.

Backward: the receiver gathers the output gradients of exactly the rows it received and
sends them back to their owners (the reverse alltoall, same splits transposed); each
owner turns them into row gradients and applies its table's optimizer in place.
"""

from __future__ import annotations

import tensorflow as tf

from des_tf import comm
from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.index_ops import segment_runs
from des_tf.layers.input_distribution import OwnedEntries, distinct_ids
from des_tf.layers.partials import partial_sums, partial_sums_grad
from des_tf.layers.plan import Plan, RowUpdate, split_partials_grad
from des_tf.tables import DynamicTable


def _pooled(rows, row_ids, local_segments, entries: OwnedEntries, num_segments,
            with_square_norms: bool) -> tf.Tensor:
    sums, norms = partial_sums(rows, row_ids, local_segments, entries.weights, num_segments,
                               with_square_norms)
    return tf.concat([sums, norms[:, None]], 1) if with_square_norms else sums


class AlltoallPlan(Plan):
    """Only the segments an owner has ids of travel, with their indices (see the module)."""

    name = ExecutionPlan.ALLTOALL

    def partials(self, table: DynamicTable, entries: OwnedEntries, *, with_square_norms: bool,
                 training: bool, hook: tf.Variable, update: RowUpdate, comm_dtype: str,
                 sharding_seed: int) -> tf.Tensor:
        """Summed partials of this rank's segments, [segments, dim] (+1 FM column), as
        DESPlan computes them, but aggregated sparsely (see the module)."""
        unique_ids, row_ids = distinct_ids(entries)
        rows = table.lookup(unique_ids) if training else table.find(unique_ids)
        # The segments this rank has ids of, ascending (entries come in segment order):
        # holders (rank order) come out grouped.
        segments, local_segments = segment_runs(entries.segment_ids)
        counts = tf.cast(entries.segment_counts, tf.int64)
        ends = tf.cumsum(counts)
        holder = tf.searchsorted(ends, segments, side="right", out_type=tf.int64)
        splits = tf.math.bincount(tf.cast(holder, tf.int32), minlength=tf.size(counts),
                                  maxlength=tf.size(counts))
        # Index of each sent segment among its holder's segments (4 bytes travel per row).
        index_at_holder = tf.cast(segments - tf.gather(ends - counts, holder), tf.int32)
        where, received_splits = comm.alltoall(index_at_holder, splits)
        own_segments = counts[comm.rank()]

        def aggregate_forward():
            partials = _pooled(rows, row_ids, local_segments, entries, tf.size(segments),
                               with_square_norms)
            received, _ = comm.alltoall(partials, splits, comm_dtype)
            return tf.math.unsorted_segment_sum(received, where, own_segments)

        if not training:
            return aggregate_forward()

        @tf.custom_gradient
        def aggregate(hook_value):
            del hook_value

            def backward(upstream):
                # Gradients of the rows each owner sent, back to it in the order it sent them.
                returned, _ = comm.alltoall(tf.gather(upstream, where), received_splits,
                                            comm_dtype)
                sums_grad, norms_grad = split_partials_grad(returned, table.dim, with_square_norms)
                rows_grad = partial_sums_grad(sums_grad, norms_grad, rows, row_ids, local_segments,
                                              entries.weights)
                return update(table, unique_ids, rows_grad)

            return aggregate_forward(), backward

        return aggregate(tf.convert_to_tensor(hook))

"""Python face of the partial-sum ops: weighted segment sums of looked-up rows (forward)
and the per-row gradients they induce (backward), with the gradient registered."""

from __future__ import annotations

import tensorflow as tf

from des_tf import ops_library


def partial_sums(rows: tf.Tensor, row_ids: tf.Tensor, segment_ids: tf.Tensor,
                 weights: tf.Tensor, num_segments, with_square_norms: bool = False
                 ) -> tuple[tf.Tensor, tf.Tensor]:
    """(sums [num_segments, dim], square_norms [num_segments] or [0]).

    sums[s] = sum of weights[e] * rows[row_ids[e]] over entries e of segment s;
    square_norms[s] = sum of weights[e]^2 * ||rows[row_ids[e]]||^2 (the FM term).
    """
    return ops_library.load().des_partial_sums(
        rows, tf.cast(row_ids, tf.int64), tf.cast(segment_ids, tf.int64),
        tf.cast(weights, tf.float32), tf.cast(num_segments, tf.int64),
        with_square_norms=with_square_norms)


def partial_sums_grad(sums_grad: tf.Tensor, square_norms_grad: tf.Tensor, rows: tf.Tensor,
                      row_ids: tf.Tensor, segment_ids: tf.Tensor, weights: tf.Tensor
                      ) -> tf.Tensor:
    """Gradient with respect to `rows` ([num_rows, dim]); duplicate ids are summed."""
    return ops_library.load().des_partial_sums_grad(
        sums_grad, square_norms_grad, rows, tf.cast(row_ids, tf.int64),
        tf.cast(segment_ids, tf.int64), tf.cast(weights, tf.float32))


@tf.RegisterGradient("DesPartialSums")
def _partial_sums_gradient(op, sums_grad, square_norms_grad):
    rows, row_ids, segment_ids, weights, _ = op.inputs
    if not op.get_attr("with_square_norms"):
        square_norms_grad = tf.zeros([0], tf.float32)
    rows_grad = ops_library.load().des_partial_sums_grad(
        sums_grad, square_norms_grad, rows, row_ids, segment_ids, weights)
    return rows_grad, None, None, None, None

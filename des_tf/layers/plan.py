"""Plan: the interface of a DES layer's execution plan (docs/design.md section 3), and the
row-level steps the plans share: partial sums of looked-up rows, the split of their
gradients, local pooling with its backward (for plans that move no occurrence),
clipping and the in-table optimizer update.

A plan turns the OwnedEntries of the input distribution (or, for a plan that moves no id,
the entries of this rank's own samples) into the summed partials of this rank's
segments, and, when training, applies the row gradients in its backward. One module per
plan (des_plan, alltoall_plan, replicated_plan, rows_plan); the registry is
des_tf.layers.plans; the bytes each moves per step are des_tf.comm.cost.PLAN_FLOWS[plan.name].
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import ClassVar

import tensorflow as tf

from des_tf import comm
from des_tf.comm.cost import ExecutionPlan
from des_tf.layers.index_ops import unique
from des_tf.layers.input_distribution import OwnedEntries
from des_tf.layers.partials import partial_sums, partial_sums_grad
from des_tf.optimizers import loss_scale
from des_tf.tables import DynamicTable


class Plan(abc.ABC):
    """One way to compute and sum a DES operator's pooled partials.

    Attributes:
      name: the plan's name (`comm=` of the layers).
      exchanges_ids: ids reach their owners through the input distribution (and layers
        reading the same ids share it); False: each rank keeps its own samples' ids.
      supports_row_budget: whether a layer with `row_budget` may use it.
    """

    name: ClassVar[ExecutionPlan]
    exchanges_ids: ClassVar[bool] = True
    supports_row_budget: ClassVar[bool] = True

    @abc.abstractmethod
    def partials(self, table: DynamicTable, entries: OwnedEntries, *, with_square_norms: bool,
                 training: bool, hook: tf.Variable, update: RowUpdate, comm_dtype: str,
                 sharding_seed: int) -> tf.Tensor:
        """Summed partials of this rank's segments, [segments, dim] (+1 column of FM
        square norms when `with_square_norms`); differentiable through `hook` when
        training, the backward updating the table with `update`. Floats travel between
        ranks in `comm_dtype` (des_tf.comm.wire); `sharding_seed` places keys on their
        owners (des_tf.sharding.shard_owner), for a plan that finds owners itself."""


def partials_of(rows, row_ids, entries: OwnedEntries, with_square_norms: bool) -> tf.Tensor:
    """Partial sums of `entries` over `rows` (+ the FM square norms column)."""
    sums, norms = partial_sums(rows, row_ids, entries.segment_ids, entries.weights,
                               entries.num_segments, with_square_norms)
    return tf.concat([sums, norms[:, None]], 1) if with_square_norms else sums


def pooled_here(rows: tf.Tensor, row_ids: tf.Tensor, entries: OwnedEntries, *,
                with_square_norms: bool, training: bool, hook: tf.Variable, dim: int,
                apply_row_gradients: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """Partials of this rank's own segments pooled from `rows` (the rows of its distinct
    ids; plans that do not move occurrences). When training, differentiable through
    `hook`: the backward turns the upstream gradients into one row gradient per distinct
    id and returns what `apply_row_gradients` of them returns (the hook's gradient)."""
    if not training:
        return partials_of(rows, row_ids, entries, with_square_norms)

    @tf.custom_gradient
    def pool(hook_value):
        del hook_value

        def backward(upstream):
            sums_grad, norms_grad = split_partials_grad(upstream, dim, with_square_norms)
            return apply_row_gradients(partial_sums_grad(
                sums_grad, norms_grad, rows, row_ids, entries.segment_ids, entries.weights))

        return partials_of(rows, row_ids, entries, with_square_norms), backward

    return pool(tf.convert_to_tensor(hook))


def served_partials(table, entries: OwnedEntries, with_square_norms: bool) -> tf.Tensor:
    """Forward of a DES operator in one process, in core TensorFlow ops only (a served
    model must run without the des_tf op library): `table.find` (absent keys read as
    zeros), then segment sums (+ the FM square norms column)."""
    unique_ids, row_ids = tf.unique(entries.ids, out_idx=tf.int64)
    rows = tf.gather(table.find(unique_ids), row_ids)
    weights = entries.weights[:, None]
    num_segments = tf.cast(entries.num_segments, tf.int64)
    sums = tf.math.unsorted_segment_sum(weights * rows, entries.segment_ids, num_segments)
    if not with_square_norms:
        return sums
    norms = tf.math.unsorted_segment_sum(
        tf.square(entries.weights) * tf.reduce_sum(tf.square(rows), 1), entries.segment_ids,
        num_segments)
    return tf.concat([sums, norms[:, None]], 1)


def split_partials_grad(upstream: tf.Tensor, dim: int, with_square_norms: bool
                        ) -> tuple[tf.Tensor, tf.Tensor]:
    """(sums gradient [n, dim], square-norms gradient [n] or [0]) of partials' gradients."""
    return upstream[:, :dim], upstream[:, dim] if with_square_norms else tf.zeros([0])


def clip_row_gradients(table: DynamicTable, keys: tf.Tensor, rows_grad: tf.Tensor,
                       keys_on_one_rank: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """(keys, row gradients) clipped as the table's optimizer asks (SparseOptimizer):
    per element of each distinct key's summed gradient, or the whole table gradient's L2
    norm. `keys_on_one_rank`: every key's gradient is here, once (owners); otherwise the
    keys are the whole gradient, duplicates included (replicated copies)."""
    clipvalue, clipnorm = table.optimizer.clipvalue, table.optimizer.clipnorm
    if clipvalue is None and clipnorm is None:
        return keys, rows_grad
    if not keys_on_one_rank:
        keys, positions = unique(keys, out_idx=tf.int64)
        rows_grad = tf.math.unsorted_segment_sum(rows_grad, positions, tf.size(keys, tf.int64))
    if clipvalue is not None:
        return keys, tf.clip_by_value(rows_grad, -clipvalue, clipvalue)
    square = tf.reduce_sum(tf.square(rows_grad))
    if keys_on_one_rank:
        square = comm.allreduce(square[None])[0]
    norm = tf.sqrt(square)
    return keys, rows_grad * (clipnorm / tf.maximum(norm, clipnorm))


@dataclasses.dataclass(frozen=True)
class RowUpdate:
    """How a plan's backward updates its table: the optimizer step counter, the row
    budget to evict down to (None: no eviction) and whether the layer's gradients are
    loss-scaled (its dtype policy is mixed_float16)."""

    step: tf.Variable
    row_budget: int | None
    loss_scaled: bool

    def __call__(self, table: DynamicTable, keys: tf.Tensor, rows_grad: tf.Tensor,
                 keys_on_one_rank: bool = True) -> tf.Tensor:
        """Applies `rows_grad` to `keys` (_apply), at once, or, while a des_tf
        LossScaleOptimizer's scaled loss is differentiated, in its `apply` (unscaled,
        skipped on overflow). Returns the gradient of the layer's hook: a float32 zero
        that depends on the update by data (a control edge alone can be pruned when
        Keras nests the train step in several tf.functions), or, when deferred, a zero
        that is NaN when a row gradient is not finite, so the step is skipped."""
        deferred = loss_scale.deferred_updates()
        if deferred is None:
            if self.loss_scaled:
                raise ValueError(
                    "a DES layer trains under the mixed_float16 policy, whose loss scaling "
                    "Keras undoes in optimizer.apply, after DES tables have updated in the "
                    "backward pass: compile with optimizer=des_tf.optimizers."
                    "LossScaleOptimizer(your_optimizer), which unscales their updates too, "
                    "or use mixed_bfloat16 (no loss scaling)")
            return self._apply(table, keys, rows_grad, keys_on_one_rank)
        deferred.append(lambda scale: self._apply(table, keys, rows_grad / scale,
                                                  keys_on_one_rank))
        finite = tf.reduce_all(tf.math.is_finite(rows_grad))
        return tf.where(finite, 0.0, float("nan"))

    def _apply(self, table: DynamicTable, keys: tf.Tensor, rows_grad: tf.Tensor,
               keys_on_one_rank: bool) -> tf.Tensor:
        """Clips (clip_row_gradients) and applies the table's optimizer to `keys`
        (duplicates summed), then evicts down to `row_budget`; a float32 zero depending
        on it by data."""
        keys, rows_grad = clip_row_gradients(table, keys, rows_grad, keys_on_one_rank)
        updated = table.apply_gradients(keys, rows_grad, self.step.assign_add(1))
        done = tf.minimum(updated, 0)
        if self.row_budget is not None:
            with tf.control_dependencies([updated]):
                done += tf.minimum(tf.size(table.evict("row_budget", self.row_budget),
                                           out_type=tf.int64), 0)
        return tf.cast(done, tf.float32)

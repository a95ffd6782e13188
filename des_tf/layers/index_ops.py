"""Python face of the index bookkeeping ops of a DES step, faster on its ~10^6 ids than
the core TensorFlow ops computing the same tensors: DesUnique (tf.unique in hash groups
that stay in cache; ops/cc/kernels/unique.h), DesGroupByOwner (a unique and owner-major
counting sorts instead of argsorts; ops/cc/kernels/group_by_owner.h) and DesRowIds
(tf.repeat of a range in one pass instead of through a [rows, longest row] mask;
ops/cc/kernels/row_ids.h)."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from des_tf import ops_library


def unique(ids: tf.Tensor, out_idx: tf.DType = tf.int32) -> tuple[tf.Tensor, tf.Tensor]:
    """(distinct ids in order of first occurrence, index of each id among them): the
    same tensors as `tf.unique(ids, out_idx)` for int64 [n] ids."""
    return ops_library.load().des_unique(ids, out_idx=out_idx)


class OwnerGroups(NamedTuple):
    """A rank's ids grouped by owner, as its alltoall messages send them."""

    distinct: tf.Tensor         # int64 [U]: distinct ids, owner-major, first occurrence first
    distinct_counts: tf.Tensor  # int32 [size]: distinct ids of each owner
    index: tf.Tensor            # [E]: each occurrence's index into `distinct`
    order: tf.Tensor            # int32 [E]: occurrence positions, owner-major, stable
    counts: tf.Tensor           # int32 [size]: occurrences of each owner


def group_by_owner(ids: tf.Tensor, size: int, seed: int, out_idx: tf.DType = tf.int32
                   ) -> OwnerGroups:
    """OwnerGroups of int64 [E] ids over `size` owners (des_tf.sharding.shard_owner with
    `seed`): what a unique, a stable argsort of the distinct ids and one of the
    occurrences by owner compute, in O(E)."""
    return OwnerGroups(*ops_library.load().des_group_by_owner(
        ids, num_shards=size, seed=seed, out_idx=out_idx))


def row_ids(lengths: tf.Tensor, out_type: tf.DType = tf.int64) -> tf.Tensor:
    """Row i repeated lengths[i] times, in row order: `tf.repeat(tf.range(n), lengths)`
    (the value_rowids of a ragged tensor with these row lengths)."""
    return ops_library.load().des_row_ids(tf.cast(lengths, tf.int64), out_type=out_type)


def segment_runs(sorted_segments: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(distinct values ascending, index of each value among them) of non-decreasing
    int64 [n] segment indices: what `tf.sort(tf.unique(x))` and a `tf.searchsorted` of x
    into it give, found from where runs start (a few elementwise passes instead of a
    hash pass and n binary searches)."""
    previous = tf.concat([tf.constant([-1], sorted_segments.dtype), sorted_segments],
                         0)[:tf.size(sorted_segments)]
    starts = tf.not_equal(sorted_segments, previous)
    return (tf.boolean_mask(sorted_segments, starts),
            tf.cumsum(tf.cast(starts, tf.int64)) - 1)

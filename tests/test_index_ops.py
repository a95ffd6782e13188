"""DesUnique, DesRowIds and segment_runs (des_tf.layers.index_ops): the same tensors as
tf.unique, tf.repeat of a range and a sorted unique + searchsorted, bad input refused;
DesGroupByOwner against tf.unique and stable argsorts by owner; DesOwnedOccurrences
against a NumPy rebuild of every rank's id message.

Runs against the library des_tf loads (the pip build by default; tests/test_builds.py
reruns the op tests against the bazel build through $DES_TF_OPS_LIBRARY).
"""

import numpy as np
import pytest
import tensorflow as tf

from des_tf import ops_library
from des_tf.layers.index_ops import group_by_owner, row_ids, segment_runs, unique
from des_tf.sharding import shard_owner


@pytest.mark.parametrize("n", [0, 1, 1000, 200_000])
@pytest.mark.parametrize("out_idx", [tf.int32, tf.int64])
def test_equals_tf_unique(n, out_idx):
    rng = np.random.default_rng(n)
    ids = tf.constant((rng.zipf(1.3, n) % 50_000) * 7919 - 2**40, tf.int64)
    expected = tf.unique(ids, out_idx=out_idx)
    got = tf.function(lambda x: unique(x, out_idx=out_idx))(ids)
    assert got[1].dtype == out_idx
    np.testing.assert_array_equal(got[0].numpy(), expected.y.numpy())
    np.testing.assert_array_equal(got[1].numpy(), expected.idx.numpy())


def test_rejects_bad_input():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="1-D|rank"):
        unique(tf.zeros([2, 2], tf.int64))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError), match="int64"):
        unique(tf.zeros([3], tf.int32))


@pytest.mark.parametrize("n,size", [(0, 2), (1, 1), (20_000, 3)])
def test_group_by_owner_equals_unique_and_stable_argsorts(n, size):
    ids = tf.constant(np.random.default_rng(n).zipf(1.3, n) % 3000 - 1500, tf.int64)
    distinct, inverse = tf.unique(ids)
    owners = shard_owner(distinct, size, seed=11)
    by_owner = tf.argsort(owners, stable=True)
    got = tf.function(lambda x: group_by_owner(x, size, 11, out_idx=tf.int64))(ids)
    np.testing.assert_array_equal(got.distinct.numpy(), tf.gather(distinct, by_owner).numpy())
    np.testing.assert_array_equal(got.distinct_counts.numpy(),
                                  np.bincount(owners.numpy(), minlength=size))
    np.testing.assert_array_equal(tf.gather(got.distinct, got.index).numpy(), ids.numpy())
    assert got.index.dtype == tf.int64
    occurrence_owners = tf.gather(owners, inverse).numpy()
    np.testing.assert_array_equal(got.order.numpy(), np.argsort(occurrence_owners, kind="stable"))
    np.testing.assert_array_equal(got.counts.numpy(),
                                  np.bincount(occurrence_owners, minlength=size))


def test_group_by_owner_refuses_bad_input():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="1-D|rank"):
        group_by_owner(tf.zeros([2, 2], tf.int64), 2, 0)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="num_shards"):
        group_by_owner(tf.zeros([2], tf.int64), 0, 0)


@pytest.mark.parametrize("out_type", [tf.int32, tf.int64])
def test_row_ids_equal_tf_repeat(out_type):
    lengths = tf.constant([0, 3, 0, 0, 5, 1, 0], tf.int64)
    expected = tf.repeat(tf.range(7, dtype=out_type), lengths)
    got = tf.function(lambda x: row_ids(x, out_type))(lengths)
    assert got.dtype == out_type
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert row_ids(tf.zeros([0], tf.int64)).shape == (0,)


def test_row_ids_refuse_negative_lengths():
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative length"):
        row_ids(tf.constant([2, -1], tf.int64))


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_segment_runs_equal_sorted_unique_and_searchsorted(n):
    segments = tf.constant(np.sort(np.random.default_rng(n).integers(0, n // 3 + 1, n)), tf.int64)
    distinct = tf.sort(tf.unique(segments).y)
    got_distinct, got_index = tf.function(segment_runs)(segments)
    np.testing.assert_array_equal(got_distinct.numpy(), distinct.numpy())
    np.testing.assert_array_equal(got_index.numpy(),
                                  tf.searchsorted(distinct, segments).numpy())


def test_owned_occurrences_rebuild_every_rank_message():
    """Rank 0 sends distinct ids (first-occurrence order, as DesUnique gives them) +
    indices, rank 1 raw ids, some of them rank 0's; each of 3 owners gets its occurrences
    in order, with their global segments and positions, and their distinct ids as
    DesUnique of them would number them."""
    rng = np.random.default_rng(0)
    lengths = [rng.integers(0, 6, 40), rng.integers(0, 6, 30)]
    occurrences = [rng.integers(0, 25, lengths[0].sum()),
                   rng.integers(-2**62, 2**62, lengths[1].sum())]
    occurrences[1][::3] = occurrences[0][:len(occurrences[1][::3])]
    distinct, inverse = (t.numpy() for t in unique(occurrences[0]))
    every = np.concatenate(occurrences)
    segment_of = np.repeat(np.arange(70), np.concatenate(lengths))
    owners = shard_owner(every, 3, seed=5).numpy()
    for rank in range(3):
        got = ops_library.load().des_owned_occurrences(
            np.concatenate([distinct, occurrences[1]]), inverse.astype(np.int32),
            [len(distinct), len(occurrences[1])], [40, 30],
            np.concatenate(lengths).astype(np.int32), num_shards=3, rank=rank, seed=5)
        mine = np.flatnonzero(owners == rank)
        np.testing.assert_array_equal(got.owned_ids.numpy(), every[mine])
        np.testing.assert_array_equal(got.segment_ids.numpy(), segment_of[mine])
        np.testing.assert_array_equal(got.positions.numpy(), mine)
        expected_unique, expected_index = unique(every[mine], out_idx=tf.int64)
        np.testing.assert_array_equal(got.unique_ids.numpy(), expected_unique.numpy())
        np.testing.assert_array_equal(got.unique_index.numpy(), expected_index.numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="DesOwnedOccurrences: .*add up"):
        ops_library.load().des_owned_occurrences([1, 2], [], [2], [1], [3], num_shards=1, rank=0)

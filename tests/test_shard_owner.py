"""DesShardOwner op: matches a numpy reference, is uniform and deterministic, rejects bad input.

Runs against the library des_tf loads (the pip build by default; tests/test_builds.py
reruns this file against the bazel build through $DES_TF_OPS_LIBRARY).
"""

import numpy as np
import pytest
import tensorflow as tf

from des_tf import shard_owner

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def reference_mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser in numpy uint64 arithmetic (wraps mod 2^64)."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x & _MASK


def reference_owner(keys: np.ndarray, num_shards: int, seed: int) -> np.ndarray:
    mixed = reference_mix64(keys.astype(np.int64).view(np.uint64) ^ np.int64(seed).view(np.uint64))
    return (mixed % np.uint64(num_shards)).astype(np.int32)


@pytest.mark.parametrize("num_shards", [1, 2, 3, 7, 64, 1000])
@pytest.mark.parametrize("seed", [0, 12345, -1, 2**63 - 1])
def test_matches_numpy_reference(num_shards, seed):
    rng = np.random.default_rng(num_shards)
    keys = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 5000, dtype=np.int64)
    keys[:4] = [0, -1, np.iinfo(np.int64).max, np.iinfo(np.int64).min]
    owners = shard_owner(tf.constant(keys), num_shards, seed=seed).numpy()
    np.testing.assert_array_equal(owners, reference_owner(keys, num_shards, seed))


@pytest.mark.parametrize("num_shards", [2, 3, 8, 64])
def test_sequential_keys_are_uniform(num_shards):
    counts = np.bincount(shard_owner(tf.range(1_000_000, dtype=tf.int64), num_shards).numpy(),
                         minlength=num_shards)
    expected = 1_000_000 / num_shards
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    dof = num_shards - 1
    # Mean dof, sd sqrt(2 dof): 8 sd above the mean never happens for a uniform mixer.
    assert chi2 < dof + 8 * np.sqrt(2 * dof), (chi2, counts)


def test_deterministic_shape_preserving_and_graph_equal_eager():
    keys = tf.reshape(tf.range(-500, 500, dtype=tf.int64), [10, 100])
    eager = shard_owner(keys, 5, seed=3)
    graph = tf.function(lambda k: shard_owner(k, 5, seed=3))(keys)
    assert eager.dtype == tf.int32 and eager.shape == (10, 100)
    np.testing.assert_array_equal(eager.numpy(), shard_owner(keys, 5, seed=3).numpy())
    np.testing.assert_array_equal(eager.numpy(), graph.numpy())


def test_python_ints_are_taken_as_int64_and_empty_input_works():
    np.testing.assert_array_equal(shard_owner([2**40, 7], 3).numpy(),
                                  reference_owner(np.array([2**40, 7]), 3, 0))
    assert shard_owner(tf.zeros([0], tf.int64), 4).shape == (0,)


def test_seed_changes_ownership():
    keys = tf.range(10_000, dtype=tf.int64)
    moved = np.mean(shard_owner(keys, 4, seed=1).numpy() != shard_owner(keys, 4, seed=2).numpy())
    assert 0.7 < moved < 0.8  # a fresh uniform assignment moves 3/4 of the keys


@pytest.mark.parametrize("dtype", [tf.int32, tf.float32, tf.string])
def test_non_int64_keys_are_invalid_argument(dtype):
    keys = tf.constant(["1", "2"]) if dtype == tf.string else tf.constant([1, 2], dtype)
    with pytest.raises(tf.errors.InvalidArgumentError, match="keys must be int64, got"):
        shard_owner(keys, 2)


@pytest.mark.parametrize("num_shards", [0, -3])
def test_non_positive_num_shards_is_invalid_argument(num_shards):
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_shards must be in"):
        shard_owner(tf.constant([1, 2], tf.int64), num_shards)


def test_bad_input_fails_when_tracing_a_graph():
    # Graph construction reports the shape function's InvalidArgument as a ValueError.
    traced = tf.function(lambda k: shard_owner(k, 0))
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="num_shards must be in"):
        traced(tf.constant([1], tf.int64))

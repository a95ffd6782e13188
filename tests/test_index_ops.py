"""DesUnique and DesRowIds (des_tf.layers.index_ops): the same tensors as tf.unique and
tf.repeat of a range, bad input refused.

Runs against the library des_tf loads (the pip build by default; tests/test_builds.py
reruns the op tests against the bazel build through $DES_TF_OPS_LIBRARY).
"""

import numpy as np
import pytest
import tensorflow as tf

from des_tf.layers.index_ops import row_ids, unique


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

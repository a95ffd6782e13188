"""DesUnique op (des_tf.layers.unique): the same tensors as tf.unique, bad input refused.

Runs against the library des_tf loads (the pip build by default; tests/test_builds.py
reruns the op tests against the bazel build through $DES_TF_OPS_LIBRARY).
"""

import numpy as np
import pytest
import tensorflow as tf

from des_tf.layers.unique import unique


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

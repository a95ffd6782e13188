"""Key ownership: which rank holds the row of each 64-bit feature id."""

from __future__ import annotations

import tensorflow as tf

from des_tf import ops_library


def shard_owner(keys: tf.Tensor, num_shards: int, seed: int = 0) -> tf.Tensor:
    """Owner rank of every key: `mix64(key ^ seed) mod num_shards` (DESIGN.md section 2).

    Args:
      keys: int64 tensor of any shape. A Python list or numpy array is converted to int64;
        a tensor of another dtype is rejected with InvalidArgumentError.
      num_shards: number of ranks sharing the keys, >= 1.
      seed: sharding seed, the same on every rank; any value of a signed 64-bit integer.

    Returns:
      int32 tensor shaped like `keys`.
    """
    if not isinstance(keys, (tf.Tensor, tf.Variable)):
        keys = tf.convert_to_tensor(keys, dtype=tf.int64)
    return ops_library.load().des_shard_owner(keys, num_shards=num_shards, seed=seed)

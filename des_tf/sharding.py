"""Key ownership: which rank holds the row of each 64-bit feature id."""

from __future__ import annotations

import tensorflow as tf

from des_tf import ops_library


def shard_owner(keys: tf.Tensor, num_shards: int, seed: int = 0) -> tf.Tensor:
    """Owner rank of every key: `mix64(key ^ seed) mod num_shards` (docs/design.md section 1).

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


def rows_per_rank(global_rows: tf.Tensor, size: int) -> tf.Tensor:
    """Samples of each rank (int64 [size]) in a global batch of `global_rows`: as even as
    possible, the first `global_rows % size` ranks taking one extra."""
    global_rows = tf.cast(global_rows, tf.int64)
    ranks = tf.range(size, dtype=tf.int64)
    return global_rows // size + tf.cast(ranks < global_rows % size, tf.int64)


def local_rows(global_rows: tf.Tensor, rank: int, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(start, count) of rank `rank`'s contiguous slice of a global batch."""
    counts = rows_per_rank(global_rows, size)
    return tf.reduce_sum(counts[:rank]), counts[rank]

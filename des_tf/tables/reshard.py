"""Resharding: the rows a rank owns under the current number of ranks, taken from shard
files written by any number of ranks (the owner rule is a pure function of the key)."""

from __future__ import annotations

import numpy as np

from des_tf.sharding import shard_owner
from des_tf.tables import TableRows

FIELDS = TableRows._fields  # keys, values, slots, metadata


def owned(shard: dict[str, np.ndarray], rank: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """The rows of one shard file that `rank` owns among `size` ranks."""
    mine = shard_owner(shard["keys"], size, seed=seed).numpy() == rank
    return {field: shard[field][mine] for field in FIELDS}


def replicated(layer) -> bool:
    """Whether `layer` keeps a full copy of its table on every rank (plan="replicated",
    or plan="auto" that chose it). An undecided auto layer holds no row yet: not."""
    return getattr(layer, "plan_in_effect", None) == "replicated"


def written_rows(layer, table, rank: int, size: int, seed: int) -> dict[str, np.ndarray]:
    """The rows this rank writes for `table`: all of its shard, or, for a table copied on
    every rank, only the rows it would own, so that every row is written exactly once and
    checkpoints look alike in every execution mode (any mode restores any checkpoint)."""
    rows = {field: x.numpy() for field, x in zip(FIELDS, table.export())}
    return owned(rows, rank, size, seed) if replicated(layer) else rows


def concatenate(parts: list[dict[str, np.ndarray]], dim: int, num_slots: int) -> TableRows:
    """One TableRows from several shards' owned rows (empty arrays of the right shapes if
    there are none)."""
    if not parts:
        return TableRows(np.zeros([0], np.int64), np.zeros([0, dim], np.float32),
                         np.zeros([0, num_slots, dim], np.float32), np.zeros([0, 3], np.int64))
    return TableRows(*(np.concatenate([p[field] for p in parts]) for field in FIELDS))

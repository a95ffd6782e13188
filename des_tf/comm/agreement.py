"""Agreement between ranks: gather small JSON facts, fail together, and check that every
rank was started with the same configuration."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from des_tf.comm.collectives import allgather
from des_tf.comm.runtime import rank, size


class ConfigMismatchError(RuntimeError):
    """Ranks were started with different configurations (raised on every rank)."""


def gather_json(value) -> list:
    """Every rank's JSON-able `value`, in rank order (one ragged allgather of bytes)."""
    if size() == 1:
        return [json.loads(json.dumps(value))]
    data = np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8)
    lengths = allgather(tf.constant([len(data)], tf.int64)).numpy()
    gathered = allgather(tf.constant(data, tf.uint8)).numpy().tobytes()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [json.loads(gathered[offsets[r]:offsets[r + 1]]) for r in range(len(lengths))]


def failures(error: str | None) -> dict[int, str]:
    """{rank: error} of the ranks that report an error (None = success); every rank
    gets the same answer, so all can raise together instead of some waiting forever."""
    return {r: e for r, e in enumerate(gather_json(error)) if e is not None}


def _differences(reference: Mapping, other: Mapping, prefix: str = "") -> list[str]:
    """Keys whose values differ between two nested dicts, as "a.b: x != y" lines."""
    lines = []
    for key in sorted(set(reference) | set(other), key=str):
        mine, theirs = reference.get(key), other.get(key)
        if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
            lines += _differences(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            lines.append(f"{prefix}{key}: {mine!r} on rank 0, {theirs!r} here")
    return lines


def assert_same_config(config: Mapping, what: str = "configuration") -> None:
    """Raises ConfigMismatchError on every rank unless every rank passed an equal
    `config` (a JSON-able dict: flags, table specs, model structure...).

    One fixed-size allgather of a sha256 digest when the configs agree; when they do not,
    the full configs are gathered so the message lists each differing key per rank.
    """
    if size() == 1:
        return
    canonical = json.dumps(config, sort_keys=True, default=str)
    digest = np.frombuffer(hashlib.sha256(canonical.encode()).digest(), np.int32)
    digests = allgather(tf.constant(digest[None])).numpy()
    if (digests == digests[0]).all():
        return
    configs = gather_json(json.loads(canonical))
    lines = []
    for r, other in enumerate(configs):
        for line in _differences(configs[0], other):
            lines.append(f"  rank {r}: " + line.replace(" here", f" on rank {r}"))
    raise ConfigMismatchError(
        f"the ranks were started with different {what} (rank {rank()} sees this):\n"
        + "\n".join(lines) + "\nstart every rank with the same flags / model code")

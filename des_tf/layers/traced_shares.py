"""TracedShares: values that layers of one traced step compute once and reuse.

DeepFM's ShardedEmbedding and SparseLinear (FM's SparseLinear and FMInteraction) read the
very same id tensors; whatever the first of them derives from those ids alone (the id
exchange, the rows plan's key request) the later ones can reuse instead of recomputing
it and running its collectives again. Only while tracing: each run of the graph
recomputes the shared tensors, while eager calls (where the same tensor objects may be
fed again in a later step, with other ranks' ids changed) always compute afresh. Every
rank traces the same model code, so every rank shares the same values and the
collectives stay in the same order everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf


class TracedShares:
    """The last `keep` (key, value) pairs added in graphs being traced."""

    def __init__(self, keep: int = 16):
        self._keep = keep
        self._recent: list[tuple[Any, tuple, Any]] = []  # (graph, key, value)

    def share(self, key: tuple, match: Callable[[tuple], bool], build: Callable[[], Any]
              ) -> tuple[tuple, Any]:
        """(key, value) of the newest value added in the graph being traced whose key
        `match`es; otherwise `build()`, offered under `key` to later layers when tracing
        (eager calls always build)."""
        if tf.executing_eagerly():
            return key, build()
        graph = tf.compat.v1.get_default_graph()
        for g, earlier_key, value in reversed(self._recent):
            if g is graph and match(earlier_key):
                return earlier_key, value
        value = build()
        self._recent = self._recent[-(self._keep - 1):] + [(graph, key, value)]
        return key, value

"""Horovod start-up and this process's place in the job (rank, size)."""

from __future__ import annotations

import functools

import horovod.tensorflow as hvd


@functools.lru_cache(maxsize=None)
def init() -> None:
    """Initialises Horovod once per process (size 1 when not launched by horovodrun)."""
    hvd.init()


def rank() -> int:
    """This process's rank in [0, size())."""
    init()
    return hvd.rank()


def size() -> int:
    """Number of ranks in the job."""
    init()
    return hvd.size()

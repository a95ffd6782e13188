"""Horovod start-up and this process's place in the job (rank, size)."""

from __future__ import annotations

import functools
import os

import horovod.tensorflow as hvd

# Horovod's background thread coordinates the ranks once per cycle, busy or idle. At its
# 1 ms default two idle ranks exchange 1.3 MB/s on loopback (0.27 MB/s at 5 ms) and spend
# CPU on it; a DES step issues a handful of large collectives, so 5 ms cycles add little
# latency (bench/compare.py, Criteo LR: lo bytes/step 273 kB -> 116 kB, samples/s 1.35x).
DEFAULT_CYCLE_TIME_MS = "5"


@functools.lru_cache(maxsize=None)
def init() -> None:
    """Initialises Horovod once per process (size 1 when not launched by horovodrun), with
    DEFAULT_CYCLE_TIME_MS unless HOROVOD_CYCLE_TIME (or horovodrun --cycle-time-ms) is set."""
    os.environ.setdefault("HOROVOD_CYCLE_TIME", DEFAULT_CYCLE_TIME_MS)
    hvd.init()


def rank() -> int:
    """This process's rank in [0, size())."""
    init()
    return hvd.rank()


def size() -> int:
    """Number of ranks in the job."""
    init()
    return hvd.size()

"""Horovod start-up and this process's place in the job (rank, size)."""

from __future__ import annotations

import functools
import os

import horovod.tensorflow as hvd

# Horovod's background thread coordinates the ranks once per cycle, busy or idle, and a
# collective starts only at the next cycle: a DES step has three rounds of collectives one
# after another (ids, partials, their gradients), each waiting for a cycle. 0.5 ms was the
# fastest 2-rank step on 2 shared cores (bench/compare.py --modes=auto, 2026-12-01,
# samples/s at 5 / 1 / 0.5 / 0.2 / 0.1 ms: Criteo LR 37.7k / 48.4k / 63.6k / 56.5k /
# 48.5k, Criteo DeepFM 22.8k / 25.0k / 27.3k / 27.7k / 26.6k); shorter cycles cost CPU.
# Each cycle's control messages (~1.4 kB between two ranks) cross the network: on slow
# links a longer cycle (HOROVOD_CYCLE_TIME) trades latency for those bytes.
DEFAULT_CYCLE_TIME_MS = "0.5"


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

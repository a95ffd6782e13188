"""Horovod start-up and this process's place in the job (rank, size)."""

from __future__ import annotations

import functools
import os

import horovod.tensorflow as hvd

# Horovod's background thread coordinates the ranks once per cycle, busy or idle, and a
# collective starts only at the next cycle: a DES step has up to three rounds of
# collectives one after another (ids, partials, their gradients), each waiting for a cycle.
# At 0.5 ms a 2-rank Criteo LR step on 2 shared cores ran 1.4x faster than at 5 ms, the
# other workloads within noise (bench/compare.py --modes=auto --input_mode=allgather_ids
# --steps=60 --rows=40000, 2026-12-01: 46.4k -> 65.1k samples/s); 0.2 and 0.1 ms were
# slower again (the cycles' own CPU: system time doubles from 5 to 0.5 ms). Each cycle's
# control messages (~1.4 kB between two ranks) cross the network: on slow links a longer
# cycle (HOROVOD_CYCLE_TIME) trades latency for those bytes.
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

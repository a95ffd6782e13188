"""The multi-rank harness itself: a raising, dying or stalled rank fails fast, never hangs."""

import os
import sys
import time

import psutil
import pytest

from des_tf import comm
from tests.horovod_harness import RankFailure, run_ranks


def _rank1_raises() -> None:
    if comm.rank() == 1:
        raise ValueError("deliberate failure on rank 1")
    comm.allreduce([1.0])  # rank 0 waits in a collective rank 1 never joins


def _rank1_exits_silently() -> None:
    if comm.rank() == 1:
        sys.stdout.flush()
        os._exit(0)


def _rank1_stalls() -> None:
    if comm.rank() == 1:
        time.sleep(3600)


def _leftover_ranks(body_name: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if any(body_name in part for part in (p.info["cmdline"] or []))]


def test_raising_rank_fails_the_launch_with_its_traceback():
    start = time.monotonic()
    with pytest.raises(RankFailure, match="failed with exit code") as failure:
        run_ranks(2, _rank1_raises, timeout_s=120)
    assert "deliberate failure on rank 1" in str(failure.value)
    assert time.monotonic() - start < 90


def test_rank_that_exits_without_finishing_is_reported():
    with pytest.raises(RankFailure, match=r"ranks \[1\] never finished"):
        run_ranks(2, _rank1_exits_silently, timeout_s=120)


def test_stalled_rank_is_killed_at_the_timeout():
    start = time.monotonic()
    with pytest.raises(RankFailure, match="stalled: killed after 20 s"):
        run_ranks(2, _rank1_stalls, timeout_s=20)
    assert time.monotonic() - start < 60
    assert not _leftover_ranks("_rank1_stalls")

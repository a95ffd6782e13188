"""Which rank was lost: every rank's process id is recorded at start-up, so when a
collective fails because a peer died, the survivors can name it instead of reporting
Horovod's anonymous "Horovod has been shut down"."""

from __future__ import annotations

import contextlib
import functools
import os
import socket

import psutil
import tensorflow as tf

from des_tf.comm.agreement import gather_json
from des_tf.comm.runtime import rank, size

# Messages of Horovod / Gloo errors that mean a peer is gone or the job is shutting down.
_PEER_FAILURE_MARKERS = ("Horovod has been shut down", "Gloo", "Connection closed by peer",
                         "Connection reset by peer", "Timed out waiting")


class RankLostError(RuntimeError):
    """A collective failed because another rank died or stopped responding."""


@functools.lru_cache(maxsize=None)
def peers() -> tuple[dict, ...]:
    """Every rank's host, process id and start time (one allgather, done once)."""
    me = psutil.Process()
    return tuple(gather_json({"host": socket.gethostname(), "pid": os.getpid(),
                              "started": me.create_time()}))


def _is_gone(peer: dict) -> bool:
    """True if the peer's process (on this host) is dead or a zombie."""
    try:
        process = psutil.Process(peer["pid"])
        return (process.create_time() != peer["started"]
                or process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def diagnose() -> str:
    """A sentence naming the lost ranks (those on this host whose process is gone) and
    the ranks on other hosts that could not be checked."""
    here = socket.gethostname()
    known = peers()
    lost = [r for r, p in enumerate(known) if r != rank() and p["host"] == here and _is_gone(p)]
    remote = [r for r, p in enumerate(known) if p["host"] != here]
    if lost:
        what = ", ".join(f"rank {r} (pid {known[r]['pid']} on {here})" for r in lost)
        sentence = f"lost {what}: its process is gone"
    else:
        sentence = "a rank failed or stopped responding; no process on this host is gone"
    if remote:
        sentence += f"; ranks {remote} on other hosts were not checked (see their logs)"
    return sentence


@contextlib.contextmanager
def naming_lost_ranks():
    """Re-raises a collective failure caused by a dead peer as RankLostError naming it."""
    try:
        yield
    except (tf.errors.OpError, RuntimeError) as error:
        if size() == 1 or isinstance(error, RankLostError) or not any(
                marker in str(error) for marker in _PEER_FAILURE_MARKERS):
            raise
        raise RankLostError(f"rank {rank()}: a collective failed: {diagnose()}. Restart the "
                            "job; it resumes from its last checkpoint") from error

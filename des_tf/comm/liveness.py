"""Which rank was lost: every rank's host, address and process id are recorded at
start-up, so when a collective fails because a peer died or its host dropped off the
network, the survivors can name it instead of reporting Horovod's anonymous "Horovod has
been shut down"."""

from __future__ import annotations

import contextlib
import functools
import os
import socket

import psutil
import tensorflow as tf

from des_tf.comm.agreement import gather_json
from des_tf.comm.runtime import own_address, rank, size

# Messages of Horovod / Gloo errors that mean a peer is gone or the job is shutting down.
_PEER_FAILURE_MARKERS = ("Horovod has been shut down", "Gloo", "Connection closed by peer",
                         "Connection reset by peer", "Timed out waiting", "des-tf mesh:")


class RankLostError(RuntimeError):
    """A collective failed because another rank died or stopped responding."""


# A TCP connection attempt to a port nobody listens on: a host that is up answers at once
# (refused); a host that is down or cut off does not answer within this time.
_PROBE_PORT, _PROBE_TIMEOUT_S = 9, 3.0


@functools.lru_cache(maxsize=None)
def peers() -> tuple[dict, ...]:
    """Every rank's host, address on Horovod's interface, process id and start time (one
    allgather, done once)."""
    me = psutil.Process()
    return tuple(gather_json({"host": socket.gethostname(), "address": own_address(),
                              "pid": os.getpid(), "started": me.create_time()}))


def _answers(address: str) -> bool:
    """True if `address` answers a TCP connection attempt (accepted or refused)."""
    try:
        socket.create_connection((address, _PROBE_PORT), timeout=_PROBE_TIMEOUT_S).close()
        return True
    except ConnectionRefusedError:
        return True
    except OSError:  # timed out, host or network unreachable
        return False


def _is_gone(peer: dict) -> bool:
    """True if the peer's process (on this host) is dead or a zombie."""
    try:
        process = psutil.Process(peer["pid"])
        return (process.create_time() != peer["started"]
                or process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def diagnose() -> str:
    """A sentence naming the lost ranks: those on this host whose process is gone, and
    those on hosts that no longer answer on the network; ranks on other hosts that still
    answer could not be checked further."""
    here = socket.gethostname()
    known = peers()
    lost = [r for r, p in enumerate(known) if r != rank() and p["host"] == here and _is_gone(p)]
    remote = [r for r, p in enumerate(known) if p["host"] != here]
    hosts = {known[r]["host"]: known[r]["address"] for r in remote}
    silent = {host for host, address in hosts.items() if address and not _answers(address)}
    parts = []
    if lost:
        what = ", ".join(f"rank {r} (pid {known[r]['pid']} on {here})" for r in lost)
        parts.append(f"lost {what}: its process is gone")
    for host in sorted(silent):
        ranks = [r for r in remote if known[r]["host"] == host]
        parts.append(f"lost host {host} ({hosts[host]}, ranks {ranks}): it does not answer "
                     f"on the network (down, or its link is)")
    if not parts:
        parts.append("a rank failed or stopped responding; no process on this host is gone")
    unchecked = [r for r in remote if known[r]["host"] not in silent]
    if unchecked:
        parts.append(f"ranks {unchecked} on other hosts that still answer were not checked "
                     "further (see their logs)")
    return "; ".join(parts)


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

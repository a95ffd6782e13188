"""Horovod start-up and this process's place in the job (rank, size)."""

from __future__ import annotations

import functools
import os
import socket

import horovod.tensorflow as hvd
import psutil

from des_tf.comm import mesh

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
# Which transport carries des_tf.comm's collectives: "mesh" (the default:
# des_tf.comm.mesh, its own connections; Horovod then only starts the job and broadcasts
# initial values, so its cycle can be long: MESH_CYCLE_TIME_MS), or "horovod".
TRANSPORT_ENV = "DES_TF_TRANSPORT"
HOROVOD, MESH = "horovod", "mesh"
MESH_CYCLE_TIME_MS = "5"
# What one more dependent collective round of a step weighs when plan="auto" compares
# plans (cost.Conventions.round_bytes): its latency as bytes at 1 Gbit/s. Over Horovod a
# round waits for the next cycle and a negotiation, ~0.5 ms: 64 KiB. Over the mesh it is
# one frame each way, taken by a thread asleep in recv(): 45 us per round on loopback
# (bench/collective_rounds.py), ~64 us with a datacenter round trip: 8 KiB.
ROUND_BYTES = {HOROVOD: 64 * 1024, MESH: 8 * 1024}
# Ranks sharing a host each get their own share of its cores (BIND_CORES_ENV=0: no
# binding). Unbound, every rank's thread pools, input pipeline and Horovod threads
# migrate over all cores and preempt each other's: 2 ranks on 2 cores ran industrial
# DeepFM 8.2-8.6k samples/s unbound, 9.0-9.5k bound (one process: 11.0k), Criteo-like
# 23-26k vs 28-30k (2026-12-01, 2 runs each).
BIND_CORES_ENV = "DES_TF_BIND_CORES"


@functools.lru_cache(maxsize=None)
def init() -> None:
    """Initialises Horovod once per process (size 1 when not launched by horovodrun), with
    DEFAULT_CYCLE_TIME_MS (MESH_CYCLE_TIME_MS with the mesh transport) unless
    HOROVOD_CYCLE_TIME (or horovodrun --cycle-time-ms) is set; connects the mesh."""
    on_mesh = transport() == MESH
    os.environ.setdefault("HOROVOD_CYCLE_TIME",
                          MESH_CYCLE_TIME_MS if on_mesh else DEFAULT_CYCLE_TIME_MS)
    hvd.init()
    if os.environ.get(BIND_CORES_ENV, "1") != "0":
        bind_to_local_cores(hvd.local_rank(), hvd.local_size())
    if on_mesh and hvd.size() > 1:
        mesh.connect(_mesh_host())


@functools.lru_cache(maxsize=None)
def transport() -> str:
    """The transport of des_tf.comm's collectives, from TRANSPORT_ENV."""
    chosen = os.environ.get(TRANSPORT_ENV, MESH)
    if chosen not in (HOROVOD, MESH):
        raise ValueError(f"{TRANSPORT_ENV}={chosen!r}: use {HOROVOD!r} or {MESH!r}")
    return chosen


def round_bytes() -> int:
    """ROUND_BYTES of this process's transport."""
    return ROUND_BYTES[transport()]


def own_address() -> str | None:
    """This host's IPv4 address on the interface horovodrun chose (HOROVOD_GLOO_IFACE,
    set by `--network-interface`), or None."""
    interface = os.environ.get("HOROVOD_GLOO_IFACE")
    for entry in psutil.net_if_addrs().get(interface, []) if interface else []:
        if entry.family == socket.AF_INET:
            return entry.address
    return None


def _mesh_host() -> str:
    """The address the mesh listens on: Horovod's interface, else the one on the route to
    horovodrun's rendezvous server, else loopback when every rank is on this host."""
    address = own_address()
    if address:
        return address
    rendezvous = os.environ.get("HOROVOD_GLOO_RENDEZVOUS_ADDR")
    if rendezvous:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((rendezvous, 9))  # picks the route; sends nothing
            return probe.getsockname()[0]
    if hvd.size() == hvd.local_size():
        return "127.0.0.1"
    raise RuntimeError(f"{TRANSPORT_ENV}={MESH}: no address to listen on; launch with "
                       "horovodrun --network-interface=<the hosts' interface>")


def bind_to_local_cores(local_rank: int, local_size: int) -> list[int] | None:
    """Binds every thread of this process (and so the threads they start) to local rank
    `local_rank`'s contiguous share of the cores this process may use, when `local_size`
    ranks share the host and there are at least as many cores; returns the share, or
    None when it binds nothing."""
    cores = sorted(os.sched_getaffinity(0))
    if local_size < 2 or len(cores) < local_size:
        return None
    share = cores[local_rank * len(cores) // local_size:
                  (local_rank + 1) * len(cores) // local_size]
    for thread in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread), share)
        except OSError:  # the thread has ended
            pass
    return share


def rank() -> int:
    """This process's rank in [0, size())."""
    init()
    return hvd.rank()


def size() -> int:
    """Number of ranks in the job."""
    init()
    return hvd.size()

"""An emulated cluster on this machine: K hosts, each a network namespace with its own
address, host name and sshd, on one switch, every link shaped to a rate in both
directions. Jobs start as on a real cluster: `horovodrun -H h1:1,h2:1 ...` run on host 1
launches the other ranks over ssh.

    with bench.cluster.running(hosts=2, link="1gbit") as cluster:
        subprocess.run(cluster.command(1, ["horovodrun", "-np", "2",
                                           "-H", cluster.slots(), ...]))

CLI: `python -m bench.cluster {up,down,run,shape,status}` (bench/cluster/__main__.py).
Needs root (namespaces, tc) and Debian's iproute2 and openssh-server (`make install`).
Nothing is left behind: `running` tears everything down on every exit path, and `down`
removes whatever an interrupted run left (every namespace and /etc/netns folder named
`des-*`, and the processes in them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bench.cluster import hosts as _hosts
from bench.cluster import network
from bench.cluster.network import ClusterError

__all__ = ["Cluster", "ClusterError", "down", "existing", "leftovers", "running",
           "unavailable_reason", "up"]

INTERFACE = network.HOST_INTERFACE


def unavailable_reason() -> str | None:
    """Why an emulated cluster cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "the emulated cluster needs root (network namespaces, tc, sshd)"
    missing = [tool for tool in ("ip", "tc", "ssh", "ssh-keygen", "unshare")
               if shutil.which(tool) is None]
    if not os.path.exists(_hosts.SSHD):
        missing.append(_hosts.SSHD)
    if missing:
        return (f"the emulated cluster needs {', '.join(missing)}: `make install` installs "
                "Debian's iproute2 and openssh-server")
    return None


@dataclass(frozen=True)
class Cluster:
    """A cluster that is up: `hosts` hosts h1..hK at 10.77.0.1..K, links at `link`
    (a tc rate such as "1gbit"; None: unshaped)."""

    hosts: int
    link: str | None
    sshd_pids: tuple[int, ...]

    def host_name(self, index: int) -> str:
        return network.host_name(index)

    def address(self, index: int) -> str:
        return network.address(index)

    def slots(self, per_host: int = 1) -> str:
        """horovodrun's -H value: every host with `per_host` slots."""
        return ",".join(f"{network.host_name(i)}:{per_host}"
                        for i in range(1, self.hosts + 1))

    def command(self, index: int, argv: Sequence[str]) -> list[str]:
        """`argv` run on host `index` (1-based)."""
        return _hosts.command(index, argv)

    def shape(self, link: str | None) -> Cluster:
        """Every link reshaped to `link`; returns the cluster as it now is."""
        network.shape(self.hosts, link)
        return Cluster(self.hosts, link, self.sshd_pids)

    def set_link(self, index: int, up: bool) -> None:
        """Plugs host `index`'s cable in (True) or pulls it (False)."""
        network.set_link(index, up)

    def interface_bytes(self) -> list[tuple[int, int]]:
        """(received, transmitted) bytes of every host's eth0 so far, host 1 first."""
        return [network.interface_bytes(pid) for pid in self.sshd_pids]


def up(hosts: int, link: str | None = None) -> Cluster:
    """Makes the cluster (removing any left over first); on failure removes what it made."""
    reason = unavailable_reason()
    if reason:
        raise ClusterError(reason)
    if link is not None:
        network.rate_bits(link)  # a bad rate fails before anything is made
    down()
    try:
        network.create(hosts)
        network.shape(hosts, link)
        _hosts.configure(hosts)
        pids = tuple(_hosts.start_sshd(i) for i in range(1, hosts + 1))
        _hosts.wait_reachable(hosts)
        return Cluster(hosts, link, pids)
    except BaseException:
        down()
        raise


def existing() -> Cluster | None:
    """The cluster that is up now, made by another process (the CLI's `up`), or None."""
    count = len([ns for ns in network.namespaces() if ns != network.SWITCH])
    if not count:
        return None
    return Cluster(count, network.link_rate(1), tuple(
        _hosts.sshd_pid(i) for i in range(1, count + 1)))


def down() -> None:
    """Ends every process in the cluster's namespaces, then removes the namespaces (and
    with them every veth and qdisc) and the /etc/netns folders. Safe to call anytime."""
    made = network.namespaces()
    killed = [pid for ns in made for pid in network.processes_in(ns)]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(network.processes_in(ns) for ns in made) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in killed:  # reaped here when this process started them (the sshds of `up`)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    for ns in made:
        network.delete(ns)
    _hosts.remove_configuration()
    left = leftovers()
    if left:
        raise ClusterError(f"could not remove {left}")


def leftovers() -> list[str]:
    """The namespaces and /etc/netns folders of a cluster that exist now."""
    return network.namespaces() + _hosts.configuration_folders()


@contextlib.contextmanager
def running(hosts: int, link: str | None = None) -> Iterator[Cluster]:
    """A cluster for the block, torn down however the block ends (SIGTERM included)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if main_thread:  # signal handlers can only be set there
        signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield up(hosts, link)
    finally:
        try:
            down()
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)


def _raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)

"""The emulated hosts' network: one network namespace per host, a switch namespace with a
bridge, a veth cable from each host to the switch, and `tc` shaping of each cable.

Every address lives on an interface inside a namespace made here: a host has only
`lo` and `eth0` (10.77.0.<i>/24), so it has no route to anything but the other hosts,
and the switch has no address at all. The machine's own namespace is not touched.

A host's link is shaped in both directions, like a full-duplex NIC: its `eth0` egress
(what the host sends) and the switch port's egress (what it receives) each get a token
bucket (`tbf`) at the link rate. This kernel has tbf but not netem, so no delay is added:
the latency is the veth and bridge path's own.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

PREFIX = "des-"  # every namespace made here starts with it; `down` removes them all
SWITCH = f"{PREFIX}switch"
BRIDGE = "br0"
HOST_INTERFACE = "eth0"
SUBNET = "10.77.0"
MAX_HOSTS = 250
_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kmg]?)bit$")
_UNIT = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


class ClusterError(RuntimeError):
    """A command setting up or tearing down the emulated network failed."""


def host_name(index: int) -> str:
    """The host name of host `index` (1-based), as `horovodrun -H` and ssh see it."""
    return f"h{index}"


def namespace(index: int) -> str:
    return f"{PREFIX}{host_name(index)}"


def address(index: int) -> str:
    return f"{SUBNET}.{index}"


def rate_bits(rate: str) -> float:
    """Bits per second of a tc rate such as `250mbit` or `1gbit`; ValueError otherwise."""
    match = _RATE.match(rate)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"link rate {rate!r}: give a positive rate such as 250mbit, 1gbit, "
                         "2.5gbit (or `unlimited`)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def sh(argv: Sequence[str], what: str) -> str:
    """Runs one set-up command; ClusterError with its output if it fails."""
    done = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if done.returncode:
        raise ClusterError(f"{what}: `{' '.join(argv)}` failed ({done.returncode}): "
                           f"{done.stdout.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """The namespaces made here that exist now."""
    listing = sh(["ip", "netns", "list"], "listing network namespaces")
    return [line.split()[0] for line in listing.splitlines()
            if line.startswith(PREFIX)]


def create(hosts: int) -> None:
    """The switch and `hosts` hosts, cabled and up, links unshaped."""
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"hosts={hosts}: between 1 and {MAX_HOSTS}")
    sh(["ip", "netns", "add", SWITCH], "creating the switch")
    sh(["ip", "-n", SWITCH, "link", "add", BRIDGE, "type", "bridge"], "creating the bridge")
    sh(["ip", "-n", SWITCH, "link", "set", BRIDGE, "up"], "starting the bridge")
    for index in range(1, hosts + 1):
        ns, port = namespace(index), host_name(index)
        sh(["ip", "netns", "add", ns], f"creating host {port}")
        sh(["ip", "link", "add", port, "netns", SWITCH, "type", "veth", "peer", "name",
            HOST_INTERFACE, "netns", ns], f"cabling host {port}")
        sh(["ip", "-n", SWITCH, "link", "set", port, "master", BRIDGE, "up"],
           f"plugging host {port} into the switch")
        sh(["ip", "-n", ns, "addr", "add", f"{address(index)}/24", "dev", HOST_INTERFACE],
           f"addressing host {port}")
        for interface in ("lo", HOST_INTERFACE):
            sh(["ip", "-n", ns, "link", "set", interface, "up"], f"starting host {port}")


def _qdisc(ns: str, device: str, rate: str | None) -> None:
    if rate is None:
        subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", device,
                        "root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return
    # The bucket holds 4 ms at the rate (at least 64 KiB, a GSO segment), so the timer's
    # granularity cannot cap the rate; the queue holds 100 ms before tbf drops.
    burst = max(64 * 1024, int(rate_bits(rate) / 8 * 0.004))
    sh(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", device, "root", "tbf",
        "rate", rate, "burst", str(burst), "latency", "100ms"], f"shaping {device} in {ns}")


def shape(hosts: int, rate: str | None) -> None:
    """Every host's link at `rate` (a tc rate) in both directions; None: unshaped."""
    if rate is not None:
        rate_bits(rate)
    for index in range(1, hosts + 1):
        _qdisc(namespace(index), HOST_INTERFACE, rate)
        _qdisc(SWITCH, host_name(index), rate)


def link_rate(index: int) -> str | None:
    """The rate host `index`'s link is shaped to now (tc's spelling, lower case), or None."""
    shown = sh(["ip", "netns", "exec", namespace(index), "tc", "qdisc", "show", "dev",
                HOST_INTERFACE], f"reading host {host_name(index)}'s qdisc")
    match = re.search(r" tbf .* rate (\S+)", shown)
    return match.group(1).lower() if match else None


def set_link(index: int, up: bool) -> None:
    """Plugs host `index`'s cable into the switch or pulls it (the switch port goes down,
    so the host's packets go nowhere and nothing tells its peers)."""
    sh(["ip", "-n", SWITCH, "link", "set", host_name(index), "up" if up else "down"],
       f"setting {host_name(index)}'s link {'up' if up else 'down'}")


def interface_bytes(pid: int) -> tuple[int, int]:
    """(received, transmitted) bytes so far of eth0 in the namespace of process `pid` (a
    host's sshd): its /proc/<pid>/net/dev, read without starting a process."""
    with open(f"/proc/{pid}/net/dev") as table:
        for line in table:
            name, _, counters = line.partition(":")
            if name.strip() == HOST_INTERFACE:
                fields = counters.split()
                return int(fields[0]), int(fields[8])
    raise ClusterError(f"no {HOST_INTERFACE} in /proc/{pid}/net/dev")


def processes_in(ns: str) -> list[int]:
    """Process ids running in namespace `ns`."""
    done = subprocess.run(["ip", "netns", "pids", ns], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    return [int(pid) for pid in done.stdout.split()]


def delete(ns: str) -> None:
    """Removes namespace `ns` (its interfaces and their peers go with it)."""
    subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)

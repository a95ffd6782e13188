"""Where bench/compare.py runs its distributed jobs, and how it counts their bytes.

- Loopback: every process on this machine's `lo` (in a private network namespace when
  compare.py could enter one); the counter is `lo`'s rx + tx.
- Hosts: bench/cluster's emulated hosts, one rank (or one PS worker + server) per host,
  started from host 1 over ssh, every link shaped to the rate under test; the counters
  are each host's eth0 (received, transmitted).

One-process runs (single, tf, keras) move no byte and run on this machine either way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from bench import cluster
from bench.ps import processes


class Loopback:
    """Every process on this machine's loopback."""

    label = "loopback"

    def horovodrun(self, ranks: int) -> list[str]:
        return [_horovodrun(), "-np", str(ranks), "-H", f"localhost:{ranks}", "--gloo"]

    def on_launch_host(self, command: Sequence[str]) -> list[str]:
        return list(command)

    def ps_flags(self) -> list[str]:
        return []

    def counters(self) -> list[tuple[int, int]]:
        """One entry: `lo`'s (rx + tx, 0); every byte sent on it is counted twice."""
        return [(processes.lo_bytes(), 0)]


class Hosts:
    """One process per emulated host of `made` (bench/cluster), launched from host 1."""

    def __init__(self, made: cluster.Cluster):
        self.cluster = made

    @property
    def label(self) -> str:
        return self.cluster.link or "unlimited"

    def horovodrun(self, ranks: int) -> list[str]:
        if ranks != self.cluster.hosts:
            raise ValueError(f"{ranks} ranks on {self.cluster.hosts} hosts: one per host")
        return [_horovodrun(), "-np", str(ranks), "-H", self.cluster.slots(),
                "--network-interface", cluster.INTERFACE, "--gloo"]

    def on_launch_host(self, command: Sequence[str]) -> list[str]:
        return self.cluster.command(1, command)

    def ps_flags(self) -> list[str]:
        names = [self.cluster.host_name(i) for i in range(1, self.cluster.hosts + 1)]
        return [f"--hosts={','.join(names)}", "--netns=off"]

    def counters(self) -> list[tuple[int, int]]:
        """Every host's eth0 (received, transmitted) bytes."""
        return self.cluster.interface_bytes()

    def set_link(self, link: str | None) -> None:
        self.cluster = self.cluster.shape(link)


def _horovodrun() -> str:
    return os.path.join(os.path.dirname(sys.executable), "horovodrun")

"""The processes of the PS baseline (on 127.0.0.1, or on hosts over ssh), and the
loopback byte counter.

No TensorFlow here: the launcher only starts, watches and ends processes.

Every child runs in its own session (process group) and gets SIGKILL from the kernel when
the launcher dies (PR_SET_PDEATHSIG), so neither an exception, a timeout nor a killed
launcher leaves a gRPC server behind. `stop()` ends each group it started, by id.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence

_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_IFREQ = "16sh22x"  # struct ifreq on 64-bit Linux: name, flags, rest of the union


def lo_bytes() -> int:
    """rx + tx bytes of the `lo` interface so far (/proc/net/dev of this network
    namespace). Every byte one process sends to another over loopback is counted twice:
    once as transmitted and once as received."""
    with open("/proc/net/dev") as table:
        for line in table:
            name, _, counters = line.partition(":")
            if name.strip() == "lo":
                fields = counters.split()
                return int(fields[0]) + int(fields[8])
    raise RuntimeError("no `lo` interface in /proc/net/dev")


def enter_private_network() -> None:
    """Moves this process (and the children it starts afterwards) into a new network
    namespace with only a loopback interface, brought up. Raises OSError without the
    privilege (root or CAP_SYS_ADMIN). Call it before starting any thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"unshare(CLONE_NEWNET): {os.strerror(error)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 now (held open together while picked,
    so none is picked twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_listening(addresses: Sequence[str], processes: Sequence[subprocess.Popen],
                   timeout_s: float) -> None:
    """Returns once every host:port accepts connections; raises if a process exits or
    the timeout passes first."""
    deadline = time.monotonic() + timeout_s
    pending = list(addresses)
    while pending:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"server {process.args} exited with {process.returncode} "
                                   f"before listening")
        host, port = pending[0].rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            pending.pop(0)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"servers {pending} not listening after {timeout_s} s")
            time.sleep(0.2)


def _child_setup() -> None:
    """In the child before exec: own session, and SIGKILL when the launcher dies."""
    os.setsid()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Processes:
    """The children of one run; `stop()` (also on exit) ends each one's process group."""

    def __init__(self):
        self.children: list[subprocess.Popen] = []

    def start(self, argv: Sequence[str], cwd: str, env: dict) -> subprocess.Popen:
        """Starts `argv` with a pipe as its standard input, which closes when this process
        ends: a server watching it ends then, too (even one started over ssh)."""
        child = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.PIPE,
                                 preexec_fn=_child_setup)
        self.children.append(child)
        return child

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM to every child's group, then SIGKILL to what is left after `grace_s`."""
        for child in self.children:
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for child in self.children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in self.children:
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)  # the child's own session: its id is the child's pid
    except ProcessLookupError:
        pass


def python_module(module: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", module, *args]


# What a process started over ssh needs from this one's environment.
_FORWARDED_ENV = ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "TF_NUM_INTRAOP_THREADS",
                  "TF_NUM_INTEROP_THREADS")


def over_ssh(host: str, argv: Sequence[str], cwd: str, env: dict) -> list[str]:
    """`argv` run on `host` over ssh, in `cwd` (the file system is shared) with this
    environment's PYTHONPATH and TensorFlow thread settings. The remote process reads
    its standard input, so it ends when the ssh session does (bench.ps.server)."""
    exports = [f"{name}={shlex.quote(env[name])}" for name in _FORWARDED_ENV if name in env]
    remote = f"cd {shlex.quote(cwd)} && exec env {' '.join(exports)} {shlex.join(argv)}"
    return ["ssh", host, remote]

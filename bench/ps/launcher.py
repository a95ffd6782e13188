"""The launcher of bench/ps_baseline.py: the gRPC servers (on a private loopback, or with
--hosts on those hosts over ssh), the coordinator, and the clean-up of all of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from absl import app

from bench.ps import flags as ps_flags
from bench.ps import processes

FLAGS = ps_flags.FLAGS
# gRPC ports of the servers with --hosts (each host has its own address).
PS_PORT, WORKER_PORT, CHIEF_PORT = 2220, 2221, 2222
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _say(message: str) -> None:
    print(f"ps_baseline: {message}", flush=True)


def _network() -> bool:
    """Enters a private network namespace when --netns asks for it; True if it did."""
    if FLAGS.netns == "off":
        return False
    try:
        processes.enter_private_network()
        return True
    except OSError as error:
        if FLAGS.netns == "on":
            raise app.UsageError(f"--netns=on: no private network namespace ({error}); "
                                 f"run as root or with --netns=off") from error
        _say(f"no private network namespace ({error}): the `lo` counter is the machine's, "
             f"so nothing else may use loopback during the run")
        return False


def _loopback_spec() -> dict[str, list[str]]:
    """--num_ps servers, --num_workers workers and the coordinator on free ports of
    127.0.0.1."""
    ports = processes.free_ports(FLAGS.num_ps + FLAGS.num_workers + 1)
    addresses = [f"127.0.0.1:{port}" for port in ports]
    return {"ps": addresses[:FLAGS.num_ps],
            "worker": addresses[FLAGS.num_ps:FLAGS.num_ps + FLAGS.num_workers],
            "chief": addresses[-1:]}


def _hosts_spec() -> dict[str, list[str]]:
    """One parameter server and one worker on every host of --hosts (the usual
    co-located layout), the coordinator on the first, which is where this runs."""
    hosts = FLAGS.hosts
    if FLAGS.num_ps != len(hosts) or FLAGS.num_workers != len(hosts):
        raise app.UsageError(f"--hosts={','.join(hosts)} puts one parameter server and one "
                             f"worker on each host: give --num_ps={len(hosts)} and "
                             f"--num_workers={len(hosts)}")
    return {"ps": [f"{host}:{PS_PORT}" for host in hosts],
            "worker": [f"{host}:{WORKER_PORT}" for host in hosts],
            "chief": [f"{hosts[0]}:{CHIEF_PORT}"]}


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> None:
    del argv
    started = time.monotonic()
    private = False if FLAGS.hosts else _network()
    spec = _hosts_spec() if FLAGS.hosts else _loopback_spec()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    children = processes.Processes()
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    code = 1
    try:
        with tempfile.TemporaryDirectory(prefix="ps_baseline_") as scratch:
            servers = []
            for job in ("ps", "worker"):
                for task in range(len(spec[job])):
                    cwd = os.path.join(scratch, f"{job}_{task}")
                    os.makedirs(cwd)
                    server = processes.python_module(
                        "bench.ps.server", [json.dumps(spec), job, str(task),
                                            str(FLAGS.threads)])
                    if FLAGS.hosts:  # on its host, over ssh, from the same folder
                        host = spec[job][task].rsplit(":", 1)[0]
                        server = processes.over_ssh(host, server, cwd, env)
                    servers.append(children.start(server, cwd, env))
            processes.wait_listening(spec["ps"] + spec["worker"], servers, timeout_s=120)
            _say(f"cluster {json.dumps(spec)} (private network: {private}); "
                 f"PS_BASELINE_PIDS {' '.join(map(str, children.pids))}")
            coordinator = children.start(processes.python_module(
                "bench.ps.coordinator", [*ps_flags.forwarded_argv(),
                                         f"--cluster={json.dumps(spec)}",
                                         f"--netns={'on' if private else 'off'}"]),
                REPO_ROOT, env)
            _say(f"coordinator pid {coordinator.pid}")
            left = FLAGS.timeout_s - (time.monotonic() - started)
            try:
                code = coordinator.wait(timeout=max(1.0, left))
            except subprocess.TimeoutExpired:
                _say(f"timed out after {FLAGS.timeout_s} s: ending the cluster")
                code = 124
            else:
                if code:
                    _say(f"the coordinator failed with exit code {code}")
    finally:
        children.stop()
    sys.exit(code)

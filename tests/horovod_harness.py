"""Runs a test body on N ranks under `horovodrun --gloo`, failing instead of hanging.

A body is a module-level function (or "module:function" string); every rank runs it
through tests.rank_main. The launch fails with every rank's output in the message if
any rank raises, dies, or the job outlives its timeout (then the whole process tree
is killed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

import psutil

from bench.cluster import INTERFACE as CLUSTER_INTERFACE
from bench.cluster import Cluster

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DONE_MARKER = "DES_RANK_DONE"
# Seconds a Gloo collective may wait for its peers before failing (Horovod's default is 30).
GLOO_TIMEOUT_S = 30


class RankFailure(AssertionError):
    """A multi-rank launch failed, stalled, or a rank ended without finishing its body."""


def _body_target(body: Callable[[], None] | str) -> str:
    if isinstance(body, str):
        return body
    return f"{body.__module__}:{body.__qualname__}"


def _kill_tree(proc: subprocess.Popen) -> None:
    """Asks horovodrun to stop its workers, then kills whatever is left of the tree."""
    try:
        tree = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return
    proc.send_signal(signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=10)
    for leftover in alive:
        try:
            leftover.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def horovodrun_command(num_ranks: int, python_args: Sequence[str],
                       cluster: Cluster | None = None) -> list[str]:
    """`horovodrun ... python <python_args>`: on `num_ranks` local ranks, or with
    `cluster` one rank per emulated host, started from host 1 over ssh."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    where = (["-H", cluster.slots(), "--network-interface", CLUSTER_INTERFACE] if cluster
             else ["-H", f"localhost:{num_ranks}"])
    command = [horovodrun, "-np", str(num_ranks), *where, "--gloo", "--gloo-timeout-seconds",
               str(GLOO_TIMEOUT_S), sys.executable, *python_args]
    return cluster.command(1, command) if cluster else command


def launch(num_ranks: int, python_args: Sequence[str], *, timeout_s: float, what: str,
           env: dict[str, str] | None = None, cluster: Cluster | None = None) -> str:
    """Runs `python <python_args>` on `num_ranks` local ranks (or the hosts of `cluster`)
    under horovodrun; returns the combined output. Raises RankFailure (with all output)
    on a non-zero exit or a timeout (the whole process tree is killed)."""
    command = horovodrun_command(num_ranks, python_args, cluster)
    run_env = {
        **os.environ,
        "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Ranks share the machine's cores: one intra-op thread each avoids thrashing.
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "2",
        **(env or {}),
    }
    proc = subprocess.Popen(
        command, cwd=REPO_ROOT, env=run_env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        output, _ = proc.communicate()
        raise RankFailure(
            f"{num_ranks}-rank run of {what} stalled: killed after {timeout_s} s."
            f"\n--- output of all ranks ---\n{output}"
        ) from None
    if proc.returncode != 0:
        raise RankFailure(
            f"{num_ranks}-rank run of {what} failed with exit code "
            f"{proc.returncode}.\n--- output of all ranks ---\n{output}"
        )
    return output


def run_ranks(
    num_ranks: int,
    body: Callable[[], None] | str,
    *,
    timeout_s: float = 180,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    cluster: Cluster | None = None,
) -> str:
    """Runs `body` on `num_ranks` local ranks (or the hosts of `cluster`); returns the
    combined output of all ranks.

    Raises RankFailure (with all output) on a non-zero exit, a timeout, or a rank that
    did not report finishing its body.
    """
    target = _body_target(body)
    output = launch(num_ranks, ["-m", "tests.rank_main", target, *args], timeout_s=timeout_s,
                    what=target, env=env, cluster=cluster)
    finished = {r for r in range(num_ranks) if f"{DONE_MARKER} rank={r}" in output}
    if len(finished) != num_ranks:
        missing = sorted(set(range(num_ranks)) - finished)
        raise RankFailure(
            f"{num_ranks}-rank run of {target} exited 0 but ranks {missing} "
            f"never finished the body.\n--- output of all ranks ---\n{output}"
        )
    return output

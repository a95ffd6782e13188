"""bench/ps_baseline.py end to end on a tiny configuration: a real ParameterServerStrategy
cluster (2 PS, 2 workers, a coordinator) trains, reports loopback bytes close to the
analytical PS count and an eval AUC, and leaves no process behind, also on a timeout."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.horovod_harness import REPO_ROOT

TINY = ["--synthetic_rows=3000", "--batch_size=128", "--steps=20", "--warmup_steps=4",
        "--log_every=10", "--embedding_dim=8", "--hidden=32,32", "--table_rows=65536",
        "--table_learning_rate=0.1", "--dense_learning_rate=0.003"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _run(args, timeout_s=240):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bench", "ps_baseline.py"),
                           *args], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout_s)


def _pids(output: str) -> list[int]:
    servers = re.search(r"PS_BASELINE_PIDS ([\d ]+)", output)
    assert servers, output[-3000:]
    pids = [int(p) for p in servers.group(1).split()]
    coordinator = re.search(r"coordinator pid (\d+)", output)
    return pids + ([int(coordinator.group(1))] if coordinator else [])


def _assert_all_gone(pids: list[int]) -> None:
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"bench.ps." in cmdline.read():
                    alive.append(pid)
        except FileNotFoundError:
            pass
    assert not alive, f"processes left running: {alive}"


@pytest.mark.parametrize("model", ["lr", "deepfm"])
def test_ps_baseline_trains_and_measures(tmp_path, model):
    metrics = tmp_path / "ps.json"
    run = _run([f"--model={model}", *TINY, f"--data_dir={tmp_path}",
                f"--metrics_json={metrics}"])
    assert run.returncode == 0, run.stdout[-4000:]
    _assert_all_gone(_pids(run.stdout))
    lines = [text for text in run.stdout.splitlines()
             if text.startswith("PS_BASELINE_SUMMARY ")]
    assert len(lines) == 1, run.stdout[-4000:]
    summary = json.loads(lines[0].split(" ", 1)[1])
    assert summary == json.loads(metrics.read_text())
    assert summary["model"] == model and summary["global_batch"] == 256
    assert summary["measured_steps"] == 16 and summary["samples_per_s"] > 0
    assert summary["lo_bytes_per_step"] > 0 and summary["analytical_bytes_per_step"] > 0
    if summary["lo_private_netns"]:  # a shared lo also counts other programs' traffic
        assert 0.5 <= summary["lo_over_analytical"] <= 3.0, summary
    assert 0.0 < summary["eval_auc"] < 1.0 and summary["eval_logloss"] > 0
    assert summary["eval_samples"] > 100


def test_ps_baseline_timeout_ends_every_process(tmp_path):
    run = _run(["--model=lr", *TINY, f"--data_dir={tmp_path}", "--timeout_s=8"],
               timeout_s=120)
    assert run.returncode == 124, run.stdout[-4000:]
    assert "timed out after 8 s" in run.stdout
    _assert_all_gone(_pids(run.stdout))

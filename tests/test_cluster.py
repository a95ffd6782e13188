"""bench/cluster: des-tf on emulated hosts (a network namespace, address, host name and
sshd each, links shaped), started by horovodrun over ssh exactly as on a real cluster.

- a 2-host job equals the one-process run (losses, dense weights, every row and slot);
- a host whose link is pulled mid-training is named by the surviving rank, which exits
  with an error in under a minute; the cut-off rank ends by itself, too;
- nothing is left running or configured afterwards;
- bench/compare.py --link runs its sweep on the hosts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import bench.cluster as cluster
from bench.cluster import network
from tests import des_model
from tests.horovod_harness import REPO_ROOT, horovodrun_command, run_ranks

pytestmark = pytest.mark.skipif(cluster.unavailable_reason() is not None,
                                reason=str(cluster.unavailable_reason()))

PROGRESS = re.compile(r"step (\d+)[/:]")


def test_two_host_job_equals_one_process(tmp_path):
    run_ranks(1, des_model.train_and_save_default_mode, args=[str(tmp_path)], timeout_s=300)
    with cluster.running(hosts=2, link="1gbit") as made:
        output = run_ranks(2, des_model.train_and_save_default_mode, args=[str(tmp_path)],
                           timeout_s=300, cluster=made)
        counted = made.interface_bytes()
    assert "[1]<stdout>:" in output  # rank 1's output came back over ssh
    # the ranks' traffic crossed the emulated links, both ways on every host
    assert min(min(host) for host in counted) > 100_000, counted
    assert cluster.leftovers() == []
    reference, two_hosts = (np.load(tmp_path / f"default_n{n}.npz") for n in (1, 2))
    assert {"losses", "dense_0", "embedding_values", "embedding_slots"} <= set(reference.files)
    for key in reference.files:
        np.testing.assert_allclose(two_hosts[key], reference[key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_a_pulled_link_is_named_and_every_rank_exits(tmp_path):
    train = ["-m", "des_tf.train", "--model=deepfm", "--synthetic_rows=6000",
             "--embedding_dim=8", "--hidden=32,32", "--batch_size=64", "--epochs=50",
             "--log_every=1", f"--data_dir={tmp_path}"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_NUM_INTRAOP_THREADS": "1",
           "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with cluster.running(hosts=2) as made:
        job = subprocess.Popen(horovodrun_command(2, train, made), cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines, pulled = [], None
        try:
            for line in job.stdout:
                lines.append(line)
                match = PROGRESS.search(line)
                if pulled is None and match and int(match.group(1)) >= 3:
                    made.set_link(2, up=False)
                    pulled = time.monotonic()
                if pulled and time.monotonic() - pulled > 120:
                    break
            job.wait(timeout=10)
        finally:
            job.kill()
        output = "".join(lines)
        assert pulled is not None, output[-3000:]
        survivor_s = time.monotonic() - pulled
        # The cut-off rank on h2 cannot report back; it must still end by itself.
        while _job_processes(2) and time.monotonic() - pulled < 60:
            time.sleep(0.5)
        cut_off_s = time.monotonic() - pulled
        assert not _job_processes(2), "the rank on h2 still runs a minute after its link went"
    assert cluster.leftovers() == []
    assert job.returncode != 0, output[-3000:]
    assert survivor_s < 60, output[-3000:]
    assert cut_off_s < 60
    assert "RankLostError" in output and "lost host h2 (10.77.0.2" in output, output[-3000:]


def _job_processes(index: int) -> list[int]:
    """Python processes running on host `index`."""
    found = []
    for pid in network.processes_in(network.namespace(index)):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().startswith("python"):
                    found.append(pid)
        except FileNotFoundError:
            continue
    return found


def test_compare_sweeps_link_rates_on_the_hosts(tmp_path):
    """bench/compare.py --link: des-tf and the PS on the emulated hosts at two rates, the
    one-process run once; bytes per host, predicted step times and held-out curves."""
    sweep = ["--models=lr", "--workloads=criteo", "--modes=des,ps,single", "--steps=8",
             "--warmup_steps=4", "--rows=2000", "--batch_size=128", "--ps_table_rows=65536",
             "--link=unlimited,100mbit", "--eval_every=4", "--eval_batches=1",
             "--timeout_s=240", f"--out_dir={tmp_path}", f"--data_dir={tmp_path / 'data'}"]
    run = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bench", "compare.py"),
                          *sweep], cwd=REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-4000:]
    assert cluster.leftovers() == []
    runs = json.loads((tmp_path / "links.json").read_text())["runs"]
    assert all(r["status"] == "ok" for r in runs), runs
    assert sorted((r["mode"], r["link"]) for r in runs) == [
        ("des", "100mbit"), ("des", "unlimited"), ("ps", "100mbit"), ("ps", "unlimited"),
        ("single", "unlimited")]
    for row in runs:
        assert len(row["held_out_curve"]) == 2, row  # steps 4 and 8
        if row["mode"] != "single":  # crossed both hosts' links, both ways
            assert 0 < row["max_direction_bytes_per_step"] < row["eth0_bytes_per_step"], row
    table = (tmp_path / "links.md").read_text()
    assert "| 100mbit | des |" in table and "| 100mbit | ps |" in table
    assert "Crossover: des >= PS at" in table
    assert (tmp_path / "links.png").stat().st_size > 1000

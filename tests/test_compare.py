"""bench/compare.py end to end on a tiny configuration (LR, Criteo-like, modes des + single
+ ps + tf + keras, a few steps): the table and the JSON hold sane figures for every mode;
the runs of every comm dtype, transport and input mode; repeats; the link report; the
rate grid's choice of each system's best rate and its report re-written from its json."""

import json
import os
import subprocess
import sys

from tests.horovod_harness import REPO_ROOT

TINY = ["--models=lr", "--workloads=criteo", "--modes=des,single,ps,tf,keras", "--steps=6",
        "--warmup_steps=2", "--rows=2000", "--batch_size=128", "--ps_table_rows=65536",
        "--timeout_s=240",
        # ids cross the network, so data dominates Horovod's per-cycle control messages
        # and the two byte counts can be held to each other
        "--input_mode=allgather_ids"]


def test_compare_tiny(tmp_path):
    run = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "bench", "compare.py"), *TINY,
         f"--out_dir={tmp_path}", f"--data_dir={tmp_path / 'data'}"],
        cwd=REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    results = json.loads((tmp_path / "compare.json").read_text())
    runs = {r["mode"]: r for r in results["runs"]}
    assert set(runs) == {"des", "single", "ps", "tf", "keras"}
    for mode, row in runs.items():
        assert row["status"] == "ok", row
        assert row["workload"] == "criteo" and row["model"] == "lr"
        assert row["global_batch"] == 256, row  # the same global batch in every mode
        assert 0.0 < row["eval_auc"] < 1.0 and row["eval_logloss"] > 0, row
        assert row["samples_per_s"] > 0, row
    for mode in ("des", "ps"):  # distributed: bytes on both rulers
        assert runs[mode]["comm_bytes_per_step"] > 0 and runs[mode]["lo_bytes_per_step"] > 0
    for mode in ("single", "tf", "keras"):
        assert runs[mode]["comm_bytes_per_step"] == 0
    if results["private_netns"]:  # nothing else on this lo: one process sends nothing
        assert runs["single"]["lo_bytes_per_step"] == runs["tf"]["lo_bytes_per_step"] == 0
        # the des_tf.comm count and the loopback counter agree up to framing overhead
        ratio = runs["des"]["lo_bytes_per_step"] / runs["des"]["comm_bytes_per_step"]
        assert 0.8 < ratio < 2.0, runs["des"]
    table = (tmp_path / "compare.md").read_text()
    for mode in ("des", "single", "ps", "tf", "keras"):
        assert f"| criteo | lr | {mode} |" in table
    assert "| criteo | lr | des |" in run.stdout
    assert "--input_mode=allgather_ids" in runs["des"]["command"]
    assert (tmp_path / "compare.png").stat().st_size > 1000


def test_runs_cover_every_comm_dtype_transport_and_input_mode():
    from bench import compare
    from des_tf.comm import runtime

    assert compare.TRANSPORT_ENV == runtime.TRANSPORT_ENV
    assert compare.TRANSPORTS == (runtime.MESH, runtime.HOROVOD) and runtime.transport() == "mesh"
    args = compare.parse_args(["--modes=auto,single", "--comm_dtypes=float32,bfloat16",
                               "--transports=mesh,horovod"])
    assert [run.label for run in args.runs] == [
        "auto", "auto/horovod", "auto/bfloat16", "auto/bfloat16/horovod", "single"]
    assert args.runs[3] == compare.Run("auto/bfloat16/horovod", "auto", "bfloat16", "horovod",
                                       "replicated_ids")
    args = compare.parse_args(["--modes=auto", "--input_mode=allgather_ids,alltoall_ids"])
    assert [(run.label, run.input_mode) for run in args.runs] == [
        ("auto", "allgather_ids"), ("auto/alltoall_ids", "alltoall_ids")]


def test_repeats_report_the_median_run_and_the_range():
    from bench import compare

    def row(mode, speed, status="ok"):
        return {"workload": "criteo", "model": "lr", "mode": mode, "link": "loopback",
                "status": status, "samples_per_s": speed, "note": "boom", "eval_auc": speed}

    runs = [row("auto", 30.0), row("single", 10.0), row("auto", 10.0),
            row("single", None, "failed"), row("auto", 20.0), row("single", 12.0),
            row("tf", None, "failed")]
    auto, single, plain_tf = compare.combine_repeats(runs)
    assert (auto["samples_per_s"], auto["eval_auc"]) == (20.0, 20.0)  # the median run
    assert auto["samples_per_s_repeats"] == [10.0, 20.0, 30.0] and not auto["failed_repeats"]
    assert single["samples_per_s"] == 10.0 and single["failed_repeats"] == 1  # lower middle
    assert plain_tf["status"] == "failed"
    assert compare._speed(auto) == "20 (10-30)"
    assert compare._speed(single) == "10 (10-12; 1 failed)"
    assert compare._speed(row("auto", 5.0)) == "5"
    assert compare.parse_args(["--repeats=3"]).repeats == 3


def test_link_report_predicts_the_link_wait_beyond_the_input_pipeline_and_the_waits():
    from bench.link_report import link_model

    def predicted(row, unlimited):
        return link_model(row, unlimited).predicted_s

    unlimited = {"link": "unlimited", "global_batch": 1000, "samples_per_s": 10000.0}
    # 1 MB in the busiest direction at 80 Mbit/s is 0.1 s on the link; measured 0.15 s
    row = {"link": "80mbit", "global_batch": 1000, "samples_per_s": 1000 / 0.15,
           "max_direction_bytes_per_step": 1_000_000}
    assert abs(predicted(row, unlimited) - 0.2) < 1e-9  # no input time
    assert abs(link_model(row, unlimited).transfer_hidden(0.15) - 0.5) < 1e-9
    row["input_ms_per_step"] = 40.0  # hidden behind the link: 0.1 - 0.04 + 0.1
    assert abs(predicted(row, unlimited) - 0.16) < 1e-9
    row["input_ms_per_step"] = 150.0  # never below the step's CPU work
    assert abs(predicted(row, unlimited) - 0.1) < 1e-9
    assert link_model(unlimited, unlimited) is None
    assert link_model(row, None) is None
    # With busy CPU: the run's own CPU work (95 ms, the machine ran slower than in the
    # unlimited run's 80) plus the longer of the unlimited run's waits (100 - 80 ms) and
    # the link time the input pipeline does not cover
    del row["input_ms_per_step"]
    row["busy_ms_per_step"], unlimited["busy_ms_per_step"] = 95.0, 80.0
    assert abs(predicted(row, unlimited) - 0.195) < 1e-9
    assert abs(link_model(row, unlimited).base_s - 0.115) < 1e-9
    assert abs(link_model(row, unlimited).transfer_hidden(0.15) - 0.65) < 1e-9
    row["input_ms_per_step"] = 90.0  # 0.1 - 0.09 of link time, inside the 0.02 of waits
    assert abs(predicted(row, unlimited) - 0.115) < 1e-9


def test_rate_grid_compares_each_system_at_its_own_best_rate(tmp_path):
    from bench import rate_grid

    command = "bench/rate_grid.py --rates=0.1,0.2 --workloads=criteo --repeats=3"
    args = rate_grid.parse_args(command.split()[1:])

    def run(system, rate, auc, status="ok", seed=0):
        scale = 2 if system == "des-tf" else 1
        return {"workload": "criteo", "system": system, "base_rate": rate,
                "dense_base_rate": 0.001, "table_rate": rate * scale,
                "dense_rate": 0.001 * scale, "seed": seed, "status": status,
                "eval_auc": auc, "eval_logloss": 0.5}

    rows = [run("des-tf", 0.1, 0.70), run("PS", 0.1, 0.72), run("des-tf", 0.2, 0.75),
            run("PS", 0.2, 0.71), run("PS", 0.3, 0.9, status="failed"),
            run("PS", 0.1, 0.74, seed=1), run("PS", 0.1, 0.73, seed=2)]  # repeats: the median
    points = rate_grid.medians(rows)
    assert rate_grid.best(points, "criteo", "PS")["base_rate"] == 0.1  # failed runs skipped
    report = rate_grid.markdown(points, args)
    assert "| 0.1 | 0.001 | 0.7000 | 0.5000 | 0.7300 (0.7200-0.7400) | 0.5000 | -0.0300 |" in report
    assert ("des-tf 0.7500 at rates 0.4 / 0.002, PS 0.7300 at 0.1 / 0.001: des-tf - PS +0.0200"
            in report)
    assert "des-tf: 130 steps of 2048 samples" in report and "seeds 0, 1, 2" in report

    # --render re-writes the report from the json alone, with its command's flags
    record = {"command": command, "date": "2026-12-03 09:00", "wall_s": 1, "runs": rows}
    (tmp_path / "rate_grid.json").write_text(json.dumps(record))
    rate_grid.main([f"--render={tmp_path / 'rate_grid.json'}"])
    assert (tmp_path / "rate_grid.md").read_text() == f"`{command}` (2026-12-03, 1 s)\n\n{report}"
    assert (tmp_path / "rate_grid.png").stat().st_size > 0

    # des-tf at the PS worker's batch runs twice the steps: equal samples, equal updates
    assert rate_grid.sync_steps(rate_grid.parse_args(["--sync_batch=1024"])) == 260

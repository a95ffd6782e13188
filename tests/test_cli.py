"""`python -m des_tf.train` end to end at N = 1 and N = 2 on a tiny config, malformed
input through the CLI, and every flag file in configs/ parsing into a working model."""

import json
import os
import subprocess
import sys

import pytest

from des_tf.data import synthetic
from tests.horovod_harness import REPO_ROOT, launch

TINY = ["--model=deepfm", "--synthetic_rows=6000", "--embedding_dim=8", "--hidden=32,32",
        "--batch_size=128", "--epochs=2", "--log_every=10", "--table_learning_rate=0.1",
        "--dense_learning_rate=0.003"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
       "PYTHONPATH": REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _train_one_process(args, timeout_s=300):
    return subprocess.run([sys.executable, "-m", "des_tf.train", *args], cwd=REPO_ROOT,
                          env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout_s)


def _summary(output: str) -> dict:
    lines = [line for line in output.splitlines() if "DES_TF_SUMMARY " in line]
    assert len(lines) == 1, output[-3000:]
    return json.loads(lines[0].split("DES_TF_SUMMARY ", 1)[1])


def test_one_process_trains_and_reports(tmp_path):
    metrics, plot = tmp_path / "summary.json", tmp_path / "curve.png"
    run = _train_one_process([*TINY, f"--data_dir={tmp_path}", f"--metrics_json={metrics}",
                              f"--plot={plot}", "--eval_every=20", "--eval_batches=2"])
    assert run.returncode == 0, run.stdout[-3000:]
    summary = _summary(run.stdout)
    assert summary == json.loads(metrics.read_text())
    assert summary["ranks"] == 1 and summary["global_batch"] == 128
    # 6000 rows, ~10% held out, whole global batches only, 2 epochs.
    assert summary["train_steps"] in range(2 * 40, 2 * 44)
    assert summary["eval_auc"] > 0.6 and summary["eval_logloss"] < 0.6
    assert summary["samples_per_s"] > 0 and summary["bytes_per_step"]["sent"] == 0
    assert 0.8 < summary["data_ceiling_auc"] < 0.99
    assert "step 10/" not in run.stdout and "step 10: " in run.stdout  # progress lines
    assert plot.stat().st_size > 10_000
    # The held-out curve: a point every 20 steps, training seconds rising, AUC improving.
    curve = summary["held_out_curve"]
    assert [p["step"] for p in curve] == list(range(20, summary["train_steps"] + 1, 20))
    assert all(a["train_s"] < b["train_s"] for a, b in zip(curve, curve[1:]))
    assert curve[-1]["auc"] > curve[0]["auc"] and "held-out at step 20: auc" in run.stdout


def test_two_ranks_match_the_single_process_reference(tmp_path):
    output = launch(2, ["-m", "des_tf.train", *TINY, f"--data_dir={tmp_path}",
                        "--single_process_reference", "--profile_steps=3",
                        f"--profile_dir={tmp_path / 'profile'}"], timeout_s=400,
                    what="des_tf.train")
    summary = _summary(output)
    assert summary["ranks"] == 2 and summary["global_batch"] == 256
    assert summary["eval_auc"] > 0.6
    # DES is the single-process computation: the same model, up to float summation order.
    assert abs(summary["eval_auc"] - summary["single_process"]["eval_auc"]) < 2e-3
    assert abs(summary["eval_logloss"] - summary["single_process"]["eval_logloss"]) < 2e-3
    sent = summary["bytes_per_step"]["sent_by_kind"]
    assert sent["reduce_scatter"] > 0 and sent["allgather"] > 0 and sent["allreduce"] > 0
    assert output.count("DES_TF_SUMMARY") == 1  # rank 0 only
    # --profile_steps: each rank's step, split into its parts by TensorFlow's profiler
    assert output.count("| part of the step") == 1
    profiles = summary["profile"]["ranks"]
    assert len(profiles) == 2
    for profile in profiles:
        parts = profile["parts"]
        for part in ("table lookup", "partial sums forward", "partial sums backward",
                     "row-gradient apply", "dense model forward + backward",
                     "wall time minus the step's ops: collectives, waiting, framework"):
            assert parts[part] > 0, (part, parts)
        assert profile["wall_ms"] > 0


def test_resume_on_another_number_of_ranks_equals_an_uninterrupted_run(tmp_path):
    """2 ranks train 20 steps with checkpoints (plan="auto"); one process resumes to step
    30 with the same global batch (plan="des"); an uninterrupted one-process run gets the
    same model."""
    common = [*TINY, f"--data_dir={tmp_path}", "--log_every=0", "--steps=30"]
    resumable = [*common, f"--checkpoint_dir={tmp_path / 'ckpt'}", "--checkpoint_every=10"]
    # The 2-rank part lets each layer pick its plan (checkpoints are alike in every mode).
    two_ranks = launch(2, ["-m", "des_tf.train", *resumable, "--steps=20", "--batch_size=64",
                           "--plan=auto"], timeout_s=300, what="des_tf.train")
    plans = _summary(two_ranks)["comm_plans"]
    assert set(plans.values()) <= {"des", "alltoall", "rows"} and len(plans) == 2  # sizes unknown
    assert two_ranks.count("des_tf plan=auto:") == 2, two_ranks[-3000:]
    resumed = _train_one_process(resumable)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "resumed from the checkpoint of step 20" in resumed.stdout
    uninterrupted = _train_one_process(common)
    assert uninterrupted.returncode == 0, uninterrupted.stdout[-3000:]
    resumed, uninterrupted = _summary(resumed.stdout), _summary(uninterrupted.stdout)
    assert resumed["train_steps"] == uninterrupted["train_steps"] == 30
    assert resumed["table_rows"] == uninterrupted["table_rows"]
    for key in ("eval_auc", "eval_logloss"):
        assert abs(resumed[key] - uninterrupted[key]) < 1e-5, (resumed, uninterrupted)


def _data_with_bad_lines(tmp_path) -> str:
    path = tmp_path / "data.tsv"
    synthetic.generate(path, synthetic.SyntheticSpec(rows=2000, seed=1),
                       progress=lambda _: None)
    lines = path.read_text().splitlines()
    lines[9] = lines[9].replace("\t", "\tx", 1)        # line 10: non-numeric integer
    lines[99] = "\t".join(lines[99].split("\t")[:20])  # line 100: truncated
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_malformed_lines_are_reported_or_fatal(tmp_path):
    data = _data_with_bad_lines(tmp_path)
    args = ["--model=lr", f"--train_data={data}", "--batch_size=200", "--log_every=0",
            "--eval_split=0.2"]
    skipped = _train_one_process(args)
    assert skipped.returncode == 0, skipped.stdout[-3000:]
    # Each line is in exactly one split: both bad lines are reported, once each.
    reported = [line for line in skipped.stdout.splitlines() if "malformed of" in line]
    assert len(reported) in (1, 2) and sum(int(line.split("skipped ")[1].split()[0])
                                           for line in reported) == 2
    assert any("non-numeric integer" in line or "wrong column count" in line
               for line in reported)
    fatal = _train_one_process([*args, "--on_malformed=raise"])
    assert fatal.returncode != 0
    assert f"malformed line {data}:" in fatal.stdout


def test_missing_data_flags_fail_with_a_message():
    run = _train_one_process(["--model=lr"], timeout_s=120)
    assert run.returncode != 0
    assert "--train_data files or --synthetic_rows" in run.stdout


BAD_DATA_FLAGS = """
import sys
from absl import flags
from des_tf.cli import flags as cli_flags

for value, expected in ((sys.argv[1], "does not exist"), (sys.argv[2], "is a folder")):
    cli_flags.FLAGS.unparse_flags()
    try:
        cli_flags.FLAGS(["train", "--model=lr", f"--train_data={value}"])
    except flags.IllegalFlagValueError as error:
        message = str(error)
        assert expected in message and "\\n" not in message, message
        print("ok", message, flush=True)
    else:
        raise AssertionError(f"--train_data={value} was accepted")
"""


def test_a_missing_file_or_a_folder_as_data_is_one_clear_line(tmp_path):
    run = subprocess.run([sys.executable, "-c", BAD_DATA_FLAGS, str(tmp_path / "missing.tsv"),
                          str(tmp_path)], cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.count("ok ") == 2, run.stdout[-3000:]


CHECK_FLAG_FILES = """
import glob, sys
import numpy as np
import tensorflow as tf
import des_tf
from des_tf.cli import data_flags
from des_tf.cli import flags as cli_flags

files = sorted(glob.glob("configs/*.flags"))
assert len(files) >= 6, files
rng = np.random.default_rng(0)
for path in files:
    cli_flags.FLAGS.unparse_flags()
    cli_flags.FLAGS(["train", f"--flagfile={path}", "--synthetic_rows=10", "--train_data="])
    schema = data_flags.schema()
    with des_tf.DESStrategy().scope():
        model = cli_flags.model(schema.feature_spec())
    features = {name: tf.constant(rng.integers(0, 1 << 40, 4)) for name in schema.sparse_features}
    features["dense"] = tf.constant(rng.random((4, schema.num_integer)), tf.float32)
    out = model(features).numpy()
    assert out.shape == (4, 1), (path, out.shape)
    print("ok", path, cli_flags.FLAGS.model, flush=True)
"""


def test_every_flag_file_parses_and_builds_its_model():
    run = subprocess.run([sys.executable, "-c", CHECK_FLAG_FILES], cwd=REPO_ROOT, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    for name in ("lr", "wide_deep", "deepfm", "dcn", "dlrm"):
        assert f"configs/{name}_criteo.flags {name}" in run.stdout
    assert "configs/demo_deepfm.flags deepfm" in run.stdout


@pytest.mark.parametrize("entry", ["history:50", "history:x:10"])
def test_bad_synthetic_multi_hot_entries_are_rejected(entry):
    run = _train_one_process(["--synthetic_rows=10", f"--synthetic_multi_hot={entry}"],
                             timeout_s=120)
    assert run.returncode != 0 and "synthetic_multi_hot" in run.stdout

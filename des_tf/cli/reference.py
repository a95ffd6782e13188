"""The single-process reference run: this CLI again, in one process, on the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

# Variables that would make the child join the running Horovod job.
_LAUNCHER_PREFIXES = ("HOROVOD_", "OMPI_", "PMI_", "PMIX_")


def train_single_process(argv: list[str], global_batch_size: int) -> dict:
    """Trains with the same flags but one rank and a per-rank batch equal to the job's
    global batch, so every step sees the same samples; returns its summary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
    with tempfile.TemporaryDirectory() as scratch:
        summary_path = os.path.join(scratch, "summary.json")
        command = [sys.executable, "-m", "des_tf.train", *argv,
                   f"--batch_size={global_batch_size}", "--nosingle_process_reference",
                   f"--metrics_json={summary_path}", "--plot=", "--log_every=0",
                   "--checkpoint_dir=", "--export_dir="]
        run = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"the single-process reference run failed "
                               f"(exit {run.returncode}):\n{run.stdout[-4000:]}")
        with open(summary_path) as summary:
            return json.load(summary)

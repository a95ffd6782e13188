"""A real TensorFlow ParameterServerStrategy baseline for des-tf, on one machine.

  .venv/bin/python bench/ps_baseline.py --model=deepfm --synthetic_rows=200000 \\
      --steps=200 --metrics_json=build/ps/deepfm.json

starts, on 127.0.0.1, --num_ps parameter-server and --num_workers worker gRPC servers
(tf.distribute.Server, one process each) and a coordinator process that trains LR,
Wide&Deep or DeepFM (des_tf.models' architectures and optimizers) with
ParameterServerStrategy + ClusterCoordinator: the coordinator schedules steps, the
workers run them concurrently and asynchronously on the shared model, pulling the unique
rows their batch touches from tables sharded over the parameter servers and pushing their
gradients back. Each worker reads its slice of every global batch with
des_tf.data.CriteoReader (des_tf.train's data flags).

Prints progress and one line `PS_BASELINE_SUMMARY {json}` (also written to
--metrics_json): loopback bytes per global step (rx + tx of `lo` over the measured steps;
the cluster runs in a private network namespace when it can, --netns), the analytical PS
bytes per step, samples/s, eval AUC and log loss, wall time. See PS_README_DRAFT.md.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # noqa: E402

from bench.ps import launcher  # noqa: E402

if __name__ == "__main__":
    app.run(launcher.main)

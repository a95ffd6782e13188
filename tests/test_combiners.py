"""Per-field combiners outside the layers: the data flags that set them (shared by the
training CLI and bench/ps) and the plain-TensorFlow baseline model's pooling."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from bench.ps.model import PSModel
from des_tf.models import FeatureSpec
from tests.horovod_harness import REPO_ROOT

PARSE_COMBINER_FLAGS = """
from absl import flags
from des_tf.cli import data_flags

FLAGS = flags.FLAGS
generated = ["train", "--synthetic_rows=10", "--synthetic_multi_hot=history:5:100,tags:2:50"]
FLAGS(generated)
print("default", data_flags.schema().feature_spec().combiners, flush=True)
FLAGS.unparse_flags()
FLAGS([*generated, "--multi_hot_combiner=mean", "--combiners=tags:sum"])
print("overridden", data_flags.schema().feature_spec().combiners, flush=True)
FLAGS.unparse_flags()
try:
    FLAGS([*generated, "--combiners=C1:mean"])
except flags.IllegalFlagValueError as error:
    print("refused:", error, flush=True)
"""


def test_combiner_flags_set_each_multi_hot_field_of_the_feature_spec():
    run = subprocess.run([sys.executable, "-c", PARSE_COMBINER_FLAGS], cwd=REPO_ROOT,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "default {'history': 'sqrtn', 'tags': 'sqrtn'}" in run.stdout
    assert "overridden {'history': 'mean', 'tags': 'sum'}" in run.stdout
    assert "--combiners names ['C1'], which are not multi-hot fields" in run.stdout


def test_ps_baseline_model_pools_each_field_by_its_combiner():
    """bench/ps's LR with the history averaged and the ad summed: logit = mean of the
    history's weights + the ad's weight (table row = id here, rows hold 10 * row)."""
    spec = FeatureSpec(sparse=("ad", "history"), combiners={"history": "mean"})
    model = PSModel(tf.distribute.get_strategy(), "lr", spec, dense_width=0, rows=16)
    model.linear.variable.assign(10.0 * tf.range(16, dtype=tf.float32)[:, None] / 16)
    features = {"ad": tf.constant([1, 2, 3], tf.int64),
                "history": tf.ragged.constant([[4, 6, 8], [], [5]], dtype=tf.int64)}
    rows = 10.0 * np.arange(16) / 16
    expected = [rows[1] + rows[[4, 6, 8]].mean(), rows[2], rows[3] + rows[5]]
    np.testing.assert_allclose(model.predict(features).numpy(),
                               1 / (1 + np.exp(-np.array(expected))), rtol=1e-5)

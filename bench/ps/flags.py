"""Flags of bench/ps_baseline.py, shared by the launcher and the coordinator process.

Data and model flags keep des_tf.train's names and defaults, so one flag file can drive
both (bench/compare.py passes the same ones)."""

from __future__ import annotations

import os

from absl import flags

MODELS = ("lr", "wide_deep", "deepfm")

FLAGS = flags.FLAGS
# Cluster.
flags.DEFINE_integer("num_ps", 2, "Parameter-server gRPC servers (tables are sharded over "
                     "all of them).")
flags.DEFINE_integer("num_workers", 2, "Worker gRPC servers; they run steps asynchronously.")
flags.DEFINE_enum("netns", "auto", ["auto", "on", "off"], "Run the cluster in a private "
                  "network namespace so the `lo` counter sees only its traffic: `on` "
                  "requires it (root or CAP_SYS_ADMIN), `auto` uses it when possible, `off` "
                  "uses the machine's loopback (then nothing else may use it during a run).")
flags.DEFINE_integer("timeout_s", 1800, "The launcher kills the whole cluster after this "
                     "many seconds.")
flags.DEFINE_integer("threads", 0, "Intra- and inter-op threads of every TensorFlow "
                     "process (0: TensorFlow's default).")
flags.DEFINE_string("cluster", "", "Internal: the cluster spec JSON the launcher gives the "
                    "coordinator.")
# Model.
flags.DEFINE_enum("model", "deepfm", MODELS, "CTR model to train.")
flags.DEFINE_integer("embedding_dim", 16, "Embedding width of every id field.")
flags.DEFINE_list("hidden", ["400", "400", "400"], "MLP sizes (Wide&Deep, DeepFM).")
flags.DEFINE_integer("table_rows", 2**22, "Rows of every table. A PS table is a fixed-size "
                     "tf.Variable: an id's row is (hashed key) mod table_rows, so distinct "
                     "keys may share a row (des-tf's hash tables never collide).")
# Data (des_tf.train's flags).
flags.DEFINE_list("train_data", [], "Criteo-format training files (.gz: gzip).")
flags.DEFINE_list("eval_data", [], "Held-out files; empty: hold out --eval_split of the lines.")
flags.DEFINE_float("eval_split", 0.1, "Fraction of the training lines held out (by hash of "
                   "file and line number) when --eval_data is empty.")
flags.DEFINE_integer("synthetic_rows", 0, "If > 0, train on this many generated Criteo-like "
                     "rows (cached in --data_dir) instead of --train_data.")
flags.DEFINE_integer("synthetic_seed", 0, "Seed of the generated data.")
flags.DEFINE_list("synthetic_multi_hot", [], "Generated multi-hot fields, each "
                  "name:mean_length:vocabulary.")
flags.DEFINE_string("data_dir", os.path.join("~", ".cache", "des_tf"),
                    "Where generated data is cached.")
flags.DEFINE_list("multi_hot", [], "Multi-hot columns after C1..C26 in --train_data, each "
                  "name[:max_length].")
flags.DEFINE_enum("integer_mode", "log1p", ["log1p", "bucketize"],
                  "Integer columns: log1p dense features or bucketized id fields.")
# Training.
flags.DEFINE_integer("batch_size", 1024, "Samples per worker step (a global step is one "
                     "step of every worker: global batch = num_workers x this).")
flags.DEFINE_integer("steps", 200, "Global steps to train (num_workers x steps worker steps "
                     "are scheduled), warm-up included.")
flags.DEFINE_integer("warmup_steps", 5, "First global steps (tracing, connection set-up) "
                     "left out of samples/s and bytes per step.")
flags.DEFINE_float("table_learning_rate", 0.05, "Adagrad learning rate of the embedding "
                   "table.")
flags.DEFINE_float("linear_learning_rate", 0.05, "FTRL learning rate of the linear (LR, "
                   "wide, FM first-order) table.")
flags.DEFINE_float("dense_learning_rate", 0.001, "Adam learning rate of the dense weights.")
flags.DEFINE_integer("seed", 0, "Seed of the weights' initialisation.")
# Output.
flags.DEFINE_string("metrics_json", "", "Also write the final summary JSON here.")
flags.DEFINE_integer("log_every", 50, "Print progress every this many global steps.")


def hidden() -> tuple[int, ...]:
    return tuple(int(v) for v in FLAGS.hidden)


def forwarded_argv() -> list[str]:
    """This module's flags as command-line arguments (for the coordinator process)."""
    return [text for text in (flag.serialize() for flag in FLAGS.get_flags_for_module(__name__)
                              if flag.name != "cluster") if text]

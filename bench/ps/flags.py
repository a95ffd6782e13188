"""Flags of bench/ps_baseline.py, shared by the launcher and the coordinator process.

The data flags are des_tf.train's own (des_tf.cli.data_flags) and the model flags keep
its names and defaults, so one flag file can drive both (bench/compare.py passes the
same ones)."""

from __future__ import annotations

from absl import flags

from des_tf.cli import data_flags

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
flags.DEFINE_list("hosts", [], "Run on these hosts (ssh to each, shared file system, e.g. "
                  "bench/cluster's h1,h2): one parameter server and one worker per host, "
                  "the coordinator on the first, where this must run. Empty: every server "
                  "on 127.0.0.1.")
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
    return [text for module in (__name__, data_flags.__name__)
            for text in (flag.serialize() for flag in FLAGS.get_flags_for_module(module)
                         if flag.name != "cluster") if text]

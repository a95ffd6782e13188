"""The training CLI's absl flags and what they build: model and optimizers (the data flags
are in des_tf.cli.data_flags)."""

from __future__ import annotations

import keras
from absl import flags

from des_tf import models, optimizers
from des_tf.cli import data_flags
from des_tf.comm.cost import COMM_DTYPES, DEPRECATED_INPUT_MODES, INPUT_MODES
from des_tf.layers.base import PLAN_OPTIONS, resolve_plan

MODELS = ("lr", "wide_deep", "deepfm", "dcn", "dlrm")
PROFILE_FROM_STEP = 5  # steps left out of a profile: tracing and warm-up
SPARSE_OPTIMIZERS = {"sgd": optimizers.SGD, "adagrad": optimizers.Adagrad,
                     "adam": optimizers.Adam, "ftrl": optimizers.Ftrl}

FLAGS = flags.FLAGS
# Model.
flags.DEFINE_enum("model", "deepfm", MODELS, "CTR model to train.")
flags.DEFINE_integer("embedding_dim", 16, "Embedding width of every id field.")
flags.DEFINE_list("hidden", ["400", "400", "400"], "MLP sizes (Wide&Deep, DeepFM, DCN).")
flags.DEFINE_integer("cross_layers", 3, "DCN-v2 cross layers.")
flags.DEFINE_list("bottom", ["64"], "DLRM bottom MLP over the dense features.")
flags.DEFINE_list("top", ["256", "128"], "DLRM top MLP.")
# Training.
flags.DEFINE_integer("batch_size", 1024, "Samples per rank per step (global batch = ranks x "
                     "this).")
flags.DEFINE_integer("epochs", 1, "Passes over the training data.")
flags.DEFINE_integer("steps", 0, "If > 0, train exactly this many steps (cycling through the "
                     "data), ignoring --epochs.")
flags.DEFINE_string("dense_optimizer", "adam", "Keras optimizer of the dense weights.")
flags.DEFINE_float("dense_learning_rate", 0.001, "Its learning rate.")
flags.DEFINE_enum("table_optimizer", "adagrad", list(SPARSE_OPTIMIZERS),
                  "In-table optimizer of the embedding tables.")
flags.DEFINE_float("table_learning_rate", 0.05, "Its learning rate.")
flags.DEFINE_enum("linear_optimizer", "ftrl", list(SPARSE_OPTIMIZERS),
                  "In-table optimizer of the linear (LR, wide, FM first-order) table.")
flags.DEFINE_float("linear_learning_rate", 0.05, "Its learning rate.")
flags.DEFINE_enum("input_mode", "allgather_ids", [*INPUT_MODES, *DEPRECATED_INPUT_MODES],
                  "How ids reach their owners (DESStrategy; the names without _ids are "
                  "deprecated).")
flags.DEFINE_enum("comm_dtype", "float32", list(COMM_DTYPES),
                  "Wire format of partials, their gradients and dense gradients between ranks "
                  "(DESStrategy): float32 is exact; bfloat16 / float16 halve those bytes.")
flags.DEFINE_enum("plan", "des", list(PLAN_OPTIONS),
                  "Execution plan of the model's DES layers (des_tf.layers.DESLayer): dense "
                  "DES partials, sparse aggregation (alltoall), replicated tables, rows "
                  "fetched from their owners, or auto: each layer picks one from the cost "
                  "model and the first batch's ids.")
flags.DEFINE_enum("comm", None, list(PLAN_OPTIONS), "Deprecated spelling of --plan.")
flags.DEFINE_integer("seed", 0, "Seed of the dense weights' initialisation.")
# Checkpoints and export.
flags.DEFINE_string("checkpoint_dir", "", "Sharded checkpoints go here; a run resumes from "
                    "the newest one in it (on any number of ranks).")
flags.DEFINE_integer("checkpoint_every", 0, "Also checkpoint every this many steps (0: only "
                     "at the end).")
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept in --checkpoint_dir.")
flags.DEFINE_string("export_dir", "", "After training, write a single-process SavedModel "
                    "for serving here.")
# Output.
flags.DEFINE_integer("log_every", 50, "Rank 0 prints progress (loss and AUC over all "
                     "ranks' samples) every this many steps; 0: never.")
flags.DEFINE_string("metrics_json", "", "Also write the final summary JSON here.")
flags.DEFINE_string("plot", "", "Write a PNG of loss and AUC against step here.")
flags.DEFINE_integer("profile_steps", 0, "Profile this many training steps after the first "
                     f"{PROFILE_FROM_STEP} (TensorFlow's profiler) and print where each "
                     "rank's step time goes (des_tf.cli.profile); 0: no profile.")
flags.DEFINE_string("profile_dir", "build/profile", "Where the profiles go (one folder "
                    "per rank).")
flags.DEFINE_bool("single_process_reference", False, "After training, rank 0 trains the "
                  "same model in one process on the same global batches and prints both "
                  "results.")


# Flags that may differ between the ranks of one job: they only shape its output.
_PER_RANK_FLAGS = {"metrics_json", "plot", "single_process_reference", "profile_dir"}


def job_config() -> dict:
    """The flags every rank of a job must agree on (checked at start-up)."""
    return {flag.name: flag.value
            for module in (__name__, data_flags.__name__)
            for flag in FLAGS.get_flags_for_module(module) if flag.name not in _PER_RANK_FLAGS}


def _ints(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def sparse_optimizer(name: str, learning_rate: float) -> optimizers.SparseOptimizer:
    return SPARSE_OPTIMIZERS[name](learning_rate)


def dense_optimizer() -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.get(FLAGS.dense_optimizer)
    optimizer.learning_rate = FLAGS.dense_learning_rate
    return optimizer


def model(feature_spec: models.FeatureSpec) -> models.CTRModel:
    """The --model, configured by the flags (build it inside the strategy's scope)."""
    tables = sparse_optimizer(FLAGS.table_optimizer, FLAGS.table_learning_rate)
    linear = sparse_optimizer(FLAGS.linear_optimizer, FLAGS.linear_learning_rate)
    dim, hidden = FLAGS.embedding_dim, _ints(FLAGS.hidden)
    plan = resolve_plan(None if FLAGS.comm else FLAGS.plan, FLAGS.comm)
    if FLAGS.model == "lr":
        return models.LR(feature_spec, table_optimizer=linear, plan=plan)
    if FLAGS.model == "wide_deep":
        return models.WideDeep(feature_spec, dim, hidden, table_optimizer=tables,
                               wide_optimizer=linear, plan=plan)
    if FLAGS.model == "deepfm":
        return models.DeepFM(feature_spec, dim, hidden, table_optimizer=tables,
                             linear_optimizer=linear, plan=plan)
    if FLAGS.model == "dcn":
        return models.DCNv2(feature_spec, dim, FLAGS.cross_layers, hidden,
                            table_optimizer=tables, plan=plan)
    return models.DLRM(feature_spec, dim, _ints(FLAGS.bottom), _ints(FLAGS.top),
                       table_optimizer=tables, plan=plan)

"""The plain-TensorFlow reference for des-tf's step time: bench/ps's models (fixed-size
hashed tf.Variable tables, unique + gather + segment sums, sparse optimizer applies to
the touched rows only, Adam on the dense weights), trained in one process with one
tf.function step on the same reader and global batches as `python -m des_tf.train`.

  .venv/bin/python bench/tf_baseline.py --model=deepfm --synthetic_rows=20000 \\
      --batch_size=2048 --steps=20 --warmup_steps=4

--batch_size is the global batch here (one process). Prints `step N/STEPS: loss L` every
--log_every steps and one line `TF_BASELINE_SUMMARY {json}`: samples/s over the steps
after --warmup_steps, eval AUC and log loss on the held-out lines. bench/compare.py runs
it as its `tf` mode.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import app, logging  # noqa: E402

from bench.ps import flags as ps_flags  # noqa: E402
from bench.ps.coordinator import evaluate  # noqa: E402
from bench.ps.model import PSModel  # noqa: E402
from des_tf.cli import data_flags  # noqa: E402
from des_tf.data.schema import DENSE_FEATURE  # noqa: E402

FLAGS = ps_flags.FLAGS
SUMMARY_PREFIX = "TF_BASELINE_SUMMARY "


def _say(message: str) -> None:
    print(f"tf_baseline: {message}", flush=True)


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    started = time.perf_counter()
    if not 0 < FLAGS.warmup_steps < FLAGS.steps:
        raise app.UsageError(f"need 0 < --warmup_steps ({FLAGS.warmup_steps}) < --steps "
                             f"({FLAGS.steps})")
    train_reader, eval_reader, facts = data_flags.readers(_say)
    spec = train_reader.schema.feature_spec()
    dense_width = train_reader.schema.num_integer if DENSE_FEATURE in spec.dense else 0
    batch = FLAGS.batch_size
    model = PSModel(tf.distribute.get_strategy(), FLAGS.model, spec, dense_width,
                    FLAGS.table_rows, FLAGS.embedding_dim, ps_flags.hidden(),
                    FLAGS.table_learning_rate, FLAGS.linear_learning_rate,
                    FLAGS.dense_learning_rate, FLAGS.seed)
    step = tf.function(model.train_step)
    batches = iter(train_reader.dataset(batch, drop_remainder=True).repeat().prefetch(2))
    timed_from = None
    for done in range(1, FLAGS.steps + 1):
        loss, _ = step(*next(batches))
        if done % FLAGS.log_every == 0 or done in (FLAGS.warmup_steps, FLAGS.steps):
            print(f"step {done}/{FLAGS.steps}: loss {float(loss):.4f}", flush=True)
        if done == FLAGS.warmup_steps:
            timed_from = time.perf_counter()
    timed_to = time.perf_counter()
    summary = {"mode": "tf", "model": FLAGS.model, "ranks": 1, "global_batch": batch,
               "steps": FLAGS.steps, "table_rows": FLAGS.table_rows,
               "dense_weights": model.dense.count,
               "samples_per_s": round((FLAGS.steps - FLAGS.warmup_steps) * batch
                                      / (timed_to - timed_from), 1),
               "bytes_per_step": {"sent": 0, "received": 0, "sent_by_kind": {}}}
    summary.update(evaluate(model, eval_reader, batch))
    if facts:
        summary["data_ceiling_auc"] = round(facts["ceiling_auc"], 6)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    print(SUMMARY_PREFIX + json.dumps(summary, sort_keys=True), flush=True)


if __name__ == "__main__":
    app.run(main)

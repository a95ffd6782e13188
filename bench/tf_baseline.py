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

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402

from bench import reference  # noqa: E402
from bench.ps import flags as ps_flags  # noqa: E402
from bench.ps.model import PSModel  # noqa: E402
from des_tf.data.schema import DENSE_FEATURE  # noqa: E402

FLAGS = ps_flags.FLAGS


def main(argv: list[str]) -> None:
    del argv
    started = time.perf_counter()
    train_reader, eval_reader, facts = reference.start("tf_baseline")
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
        reference.report_step(done, loss)
        if done == FLAGS.warmup_steps:
            timed_from = time.perf_counter()
    timed_s = time.perf_counter() - timed_from
    predict = tf.function(model.predict)
    evaluation = reference.evaluate(lambda f: predict(f).numpy(), eval_reader.dataset(batch))
    reference.print_summary("TF_BASELINE_SUMMARY ", "tf", batch, timed_s, evaluation, facts,
                            started)


if __name__ == "__main__":
    app.run(main)

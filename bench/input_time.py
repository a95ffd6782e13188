"""One rank's input pipeline alone: how long one core takes to read and parse a rank's
batch, with no training step beside it.

bench/link_report.py's predicted step time needs it. The pipeline runs ahead of the step
in tf.data's own threads, so when a step waits on a slow link the waiting frees the
cores for the next batches' reading: that part of the step's CPU overlaps the transfer
instead of adding to it.

  .venv/bin/python bench/input_time.py --synthetic_rows=20000 --batch_size=1024 \\
      --ranks=2 --steps=40 --warmup_steps=8

--batch_size is the samples per rank, the global batch --ranks times it; rank 0's slice
is read (`des_tf.data.CriteoReader.dataset`, as des_tf.train and bench/ps's workers read
it), with `--keep_ids_global` as des-tf's "replicated_ids" input mode reads it. The
process is bound to one core. Prints one line `INPUT_TIME_SUMMARY {json}` with
`input_ms_per_step` over the batches after --warmup_steps.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

from bench import reference  # noqa: E402
from bench.ps import flags as ps_flags  # noqa: E402

FLAGS = ps_flags.FLAGS
flags.DEFINE_integer("ranks", 2, "Ranks the global batch is sliced over; rank 0's slice is "
                     "read.")
flags.DEFINE_bool("keep_ids_global", False, "Read ids as the replicated_ids input mode does "
                  "(every line's ids of the global batch).")


def main(argv: list[str]) -> None:
    del argv
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    train_reader, _, _ = reference.start("input_time")
    batches = iter(train_reader.dataset(FLAGS.ranks * FLAGS.batch_size, 0, FLAGS.ranks,
                                        keep_ids_global=FLAGS.keep_ids_global,
                                        drop_remainder=True).repeat())
    for _ in range(FLAGS.warmup_steps):
        next(batches)
    started = time.perf_counter()
    for _ in range(FLAGS.steps - FLAGS.warmup_steps):
        next(batches)
    elapsed = time.perf_counter() - started
    print("INPUT_TIME_SUMMARY " + json.dumps({
        "input_ms_per_step": round(1000 * elapsed / (FLAGS.steps - FLAGS.warmup_steps), 2),
        "ranks": FLAGS.ranks, "batch_size": FLAGS.batch_size,
        "keep_ids_global": FLAGS.keep_ids_global}), flush=True)


if __name__ == "__main__":
    app.run(main)

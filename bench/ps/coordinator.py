"""The coordinator of the PS baseline (started by bench/ps_baseline.py, which passes the
cluster): ParameterServerStrategy + ClusterCoordinator, training, measurement, eval.

Input: the coordinator ships one dataset function to every worker (ClusterCoordinator
gives each worker the same function: TF 2.21 has no worker index for it). The function
starts by reading the worker's task index from `task_index` in the worker process's own
working directory (`/proc/self/cwd`, where bench.ps.server wrote it), then reads that
worker's slice of every global batch with des_tf.data.CriteoReader, like a des-tf rank.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf
from absl import app, logging

from bench.ps import flags as ps_flags
from bench.ps.model import PSModel
from bench.ps.processes import lo_bytes
from bench.reference import evaluate
from des_tf.cli import data_flags
from des_tf.cli import held_out as held_out_lines
from des_tf.cli.held_out import TrainingClock
from des_tf.data.schema import DENSE_FEATURE

FLAGS = ps_flags.FLAGS
TASK_INDEX_FILE = "/proc/self/cwd/task_index"
SUMMARY_PREFIX = "PS_BASELINE_SUMMARY "


def _say(message: str) -> None:
    print(f"ps_baseline: {message}", flush=True)


def _strategy():
    cluster = json.loads(FLAGS.cluster)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type="chief", task_id=0, rpc_layer="grpc")
    partitioner = tf.distribute.experimental.partitioners.FixedShardsPartitioner(
        num_shards=len(cluster["ps"]))
    strategy = tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=partitioner)
    return strategy, tf.distribute.experimental.coordinator.ClusterCoordinator(strategy)


def main(argv: list[str]) -> None:
    del argv
    logging.set_verbosity(logging.WARNING)
    started = time.perf_counter()
    if FLAGS.warmup_steps >= FLAGS.steps:
        raise app.UsageError(f"--steps ({FLAGS.steps}) must exceed --warmup_steps "
                             f"({FLAGS.warmup_steps})")
    # Malformed lines raise: the readers' skip counters are variables, which a dataset
    # function shipped to the workers may not hold.
    train_reader, eval_reader, facts = data_flags.readers(_say, on_malformed="raise")
    schema = train_reader.schema
    strategy, coordinator = _strategy()
    workers, batch = FLAGS.num_workers, FLAGS.batch_size
    global_batch = workers * batch
    spec = schema.feature_spec()
    dense_width = schema.num_integer if DENSE_FEATURE in spec.dense else 0
    with strategy.scope():
        model = PSModel(strategy, FLAGS.model, spec, dense_width, FLAGS.table_rows,
                        FLAGS.embedding_dim, ps_flags.hidden(), FLAGS.table_learning_rate,
                        FLAGS.linear_learning_rate, FLAGS.dense_learning_rate, FLAGS.seed)
    _say(f"{FLAGS.model}: tables {[t.name for t in model.tables]} of {FLAGS.table_rows} "
         f"rows on {model.linear.devices()}, {model.dense.count} dense weights; "
         f"{workers} workers x {batch} samples, data {train_reader.paths}")

    def dataset_fn():
        def worker_slice(line):
            rank = tf.strings.to_number(line, tf.int64)
            return train_reader.dataset(global_batch, rank, workers, drop_remainder=True)
        return (tf.data.TextLineDataset(TASK_INDEX_FILE).flat_map(worker_slice).repeat()
                .prefetch(2))

    iterator = iter(coordinator.create_per_worker_dataset(dataset_fn))

    @tf.function
    def worker_step(iterator):
        features, labels = next(iterator)
        return strategy.run(model.train_step, args=(features, labels))

    warmup, total = FLAGS.warmup_steps, FLAGS.steps
    predict = tf.function(model.predict)
    held_out = (data_flags.held_out_slice(eval_reader, global_batch) if FLAGS.eval_every
                else None)
    clock, curve, results = TrainingClock(), [], []
    window: dict[str, float] = {}
    clock.start()
    # Scheduled in chunks that end at the warm-up's end and at every held-out point; the
    # workers run each chunk asynchronously, the chunk's end waits for all of them.
    evals = range(FLAGS.eval_every, total + 1, FLAGS.eval_every) if held_out else []
    for end in sorted({warmup, total, *evals}):
        first = len(results) // workers
        results += [coordinator.schedule(worker_step, args=(iterator,))
                    for _ in range((end - first) * workers)]
        for step in range(first + 1, end + 1):
            if step > warmup and (step % FLAGS.log_every == 0 or step == total):
                loss = results[step * workers - 1].fetch()[0]
                _say(f"global step {step}/{total}: loss {loss:.4f}")
        coordinator.join()
        if end == warmup:
            window.update(lo=lo_bytes(), train_s=clock.seconds())
            _say(f"global step {warmup}/{total}: warm-up done, timing starts")
        if end in evals:
            clock.pause()
            _say(held_out_lines.BEGIN.format(step=end))
            metrics = evaluate(lambda f: predict(f).numpy(), held_out)
            point = {"step": end, "train_s": round(clock.seconds(), 3),
                     "auc": metrics["eval_auc"], "logloss": metrics["eval_logloss"]}
            curve.append(point)
            _say(held_out_lines.RESULT.format(**point))
            clock.resume()
    lo_end, train_end_s = lo_bytes(), clock.seconds()
    timed_s = train_end_s - window["train_s"]

    outputs = [r.fetch() for r in results[warmup * workers:]]
    unique = float(np.mean([int(u) for _, u in outputs]))
    measured_steps = total - warmup  # global steps
    payload = model.payload_bytes(unique)
    payload_step = workers * sum(payload.values())  # every worker's step, once per byte
    lo_step = (lo_end - window["lo"]) / measured_steps
    summary = {
        "mode": "ps", "model": FLAGS.model, "num_ps": FLAGS.num_ps, "num_workers": workers,
        "batch_size": batch, "global_batch": global_batch, "steps": FLAGS.steps,
        "measured_steps": measured_steps, "table_rows": FLAGS.table_rows,
        "dense_weights": model.dense.count,
        "samples_per_s": round(measured_steps * global_batch / timed_s, 1),
        "unique_rows_per_worker_step": round(unique, 1),
        "lo_bytes_per_step": round(lo_step),
        "lo_private_netns": FLAGS.netns == "on",
        # rx + tx on lo counts every byte twice: compare lo with 2 x payload.
        "analytical_bytes_per_step": round(2 * payload_step),
        "analytical_payload_per_step": {k: round(workers * v) for k, v in payload.items()},
        "lo_over_analytical": round(lo_step / (2 * payload_step), 3),
        "train_wall_s": round(timed_s, 2),
    }
    if curve:
        summary["held_out_curve"] = curve
    _say(f"trained {FLAGS.steps} global steps; evaluating")
    summary.update(evaluate(lambda f: predict(f).numpy(), eval_reader.dataset(global_batch)))
    if facts:
        summary["data_ceiling_auc"] = round(facts["ceiling_auc"], 6)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    line = json.dumps(summary, sort_keys=True)
    print(SUMMARY_PREFIX + line, flush=True)
    if FLAGS.metrics_json:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.metrics_json)), exist_ok=True)
        with open(FLAGS.metrics_json, "w") as out:
            out.write(line + "\n")
    sys.stdout.flush()
    os._exit(0)  # the servers never return from join(): do not wait on their channels


if __name__ == "__main__":
    app.run(main)

"""What the one-process references of bench/compare.py share (bench/tf_baseline.py,
bench/keras_baseline.py; the held-out evaluation also serves bench/ps's coordinator):
their step checks, progress lines, evaluation and summary line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable

import numpy as np
from absl import app, logging

from bench.ps import flags as ps_flags
from des_tf.cli import data_flags
from des_tf.cli.held_out import auc_and_logloss
from des_tf.data import CriteoReader

FLAGS = ps_flags.FLAGS


def start(name: str) -> tuple[CriteoReader, CriteoReader, dict]:
    """A reference run's start: checks the step flags, quiets absl logging, and returns
    (train reader, eval reader, facts) as des_tf.train makes them, progress printed as
    `<name>: ...`."""
    if not 0 < FLAGS.warmup_steps < FLAGS.steps:
        raise app.UsageError(f"need 0 < --warmup_steps ({FLAGS.warmup_steps}) < --steps "
                             f"({FLAGS.steps})")
    logging.set_verbosity(logging.WARNING)
    return data_flags.readers(lambda message: print(f"{name}: {message}", flush=True))


def report_step(done: int, loss) -> None:
    """The progress line bench/compare.py times (its window: --warmup_steps to --steps);
    `loss` (a scalar tensor or number) is read only on those steps."""
    if done % FLAGS.log_every == 0 or done in (FLAGS.warmup_steps, FLAGS.steps):
        print(f"step {done}/{FLAGS.steps}: loss {float(loss):.4f}", flush=True)


def evaluate(predict: Callable, batches: Iterable) -> dict:
    """AUC and log loss on held-out (features, labels) `batches`; `predict(features)`
    returns click probabilities (any shape holding one per sample)."""
    scores, labels = [], []
    for features, label in batches:
        scores.append(np.asarray(predict(features)).reshape(-1))
        labels.append(label.numpy().reshape(-1))
    if not scores:
        raise ValueError("no held-out lines")
    labels, scores = np.concatenate(labels), np.concatenate(scores)
    metrics = auc_and_logloss(labels, scores)
    return {"eval_auc": round(metrics["auc"], 6), "eval_logloss": round(metrics["logloss"], 6),
            "eval_samples": int(len(labels))}


def print_summary(prefix: str, mode: str, batch: int, timed_s: float, evaluation: dict,
                  facts: dict, started: float) -> None:
    """The summary line bench/compare.py reads (a one-process run moves no byte)."""
    summary = {"mode": mode, "model": FLAGS.model, "ranks": 1, "global_batch": batch,
               "steps": FLAGS.steps, "table_rows": FLAGS.table_rows,
               "samples_per_s": round((FLAGS.steps - FLAGS.warmup_steps) * batch / timed_s, 1),
               "bytes_per_step": {"sent": 0, "received": 0, "sent_by_kind": {}}, **evaluation}
    if facts:
        summary["data_ceiling_auc"] = round(facts["ceiling_auc"], 6)
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    print(prefix + json.dumps(summary, sort_keys=True), flush=True)

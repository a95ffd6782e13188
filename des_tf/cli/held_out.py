"""The held-out curve: AUC and log loss on a fixed held-out slice every K training steps,
against the training seconds so far, the time spent evaluating left out. From it
bench/compare.py reads time-to-accuracy: the training seconds until the held-out AUC
first reaches a target. bench/ps's coordinator prints the same lines."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from des_tf.data import synthetic
from des_tf.prediction import predict_global

# Lines bench/compare.py reads: it leaves the seconds and bytes between them out of the
# training window.
BEGIN = "held-out eval begins at step {step}"
RESULT = "held-out at step {step}: auc {auc:.6f} logloss {logloss:.6f} train_s {train_s:.3f}"


def auc_and_logloss(labels: np.ndarray, scores: np.ndarray) -> dict:
    """AUC and mean log loss of click probabilities `scores` against 0/1 `labels`."""
    labels, scores = labels.reshape(-1), scores.reshape(-1)
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    logloss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return {"auc": synthetic.auc(labels, scores), "logloss": float(logloss)}


class TrainingClock:
    """Training seconds since `start()`, with `pause()` / `resume()` around evaluations."""

    def __init__(self):
        self._started: float | None = None
        self._paused_s = 0.0
        self._paused_at: float | None = None

    def start(self) -> None:
        self._started = time.perf_counter()

    def pause(self) -> None:
        self._paused_at = time.perf_counter()

    def resume(self) -> None:
        self._paused_s += time.perf_counter() - self._paused_at
        self._paused_at = None

    def seconds(self) -> float:
        now = self._paused_at if self._paused_at is not None else time.perf_counter()
        return now - self._started - self._paused_s


class HeldOutCurve(keras.callbacks.Callback):
    """Every `every` steps, evaluates the model on `held_out` (a dataset of global
    batches of (features, labels), the same on every rank) and records (step, train_s,
    auc, logloss); rank 0 prints each point. A collective: every rank runs it with the
    same `every`. The clock starts at the first step, so the curve includes tracing, as
    a user waiting for a model would."""

    def __init__(self, every: int, held_out: tf.data.Dataset,
                 say: Callable[[str], None]):
        super().__init__()
        self.every, self.held_out, self.say = every, held_out, say
        self.labels = np.concatenate([labels.numpy().reshape(-1)
                                      for _, labels in held_out])
        self.clock = TrainingClock()
        self.curve: list[dict] = []
        self._steps = 0

    def on_train_begin(self, logs=None):
        self.clock.start()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self._steps % self.every:
            return
        self.clock.pause()
        self.say(BEGIN.format(step=self._steps))
        scores = predict_global(self.model, self.held_out)
        point = {"step": self._steps, "train_s": round(self.clock.seconds(), 3),
                 **auc_and_logloss(self.labels, np.asarray(scores))}
        self.curve.append(point)
        self.say(RESULT.format(**point))
        self.clock.resume()

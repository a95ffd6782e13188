"""Training progress: rank 0's periodic progress line and the loss / AUC curve."""

from __future__ import annotations

import time

import keras

from des_tf import comm


class TrainingProgress(keras.callbacks.Callback):
    """Every `log_every` steps, records (step, loss, AUC) over all ranks' samples and, on
    rank 0, prints a progress line; times the steps after the first (which traces the
    graph). Every rank must run it with the same `log_every`: reading the metrics
    outside the step sums them over ranks (a collective; des_tf.strategy)."""

    def __init__(self, global_batch_size: int, log_every: int, total_steps: int | None,
                 first_step: int = 0):
        super().__init__()
        self.first_step = first_step  # steps a restored checkpoint had already done
        self.global_batch_size = global_batch_size
        self.log_every = log_every
        self.total_steps = total_steps
        self.curve: list[tuple[int, float, float]] = []
        self.steps = 0
        self._timed_from: float | None = None
        self._timed_to: float | None = None
        self._last_print = (0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == 1:
            self._timed_from = time.perf_counter()
            self._last_print = (1, self._timed_from)
        if not self.log_every or self.steps % self.log_every:
            return
        step = self.first_step + self.steps
        results = self.model.get_metrics_result()
        self.curve.append((step, float(results.get("loss", float("nan"))),
                           float(results.get("auc", float("nan")))))
        if comm.rank() == 0:
            steps_before, time_before = self._last_print
            now = time.perf_counter()
            rate = (self.steps - steps_before) * self.global_batch_size / (now - time_before)
            self._last_print = (self.steps, now)
            total = f"/{self.total_steps}" if self.total_steps else ""
            _, loss, auc = self.curve[-1]
            print(f"step {step}{total}: {rate:,.0f} samples/s, loss {loss:.4f}, "
                  f"auc {auc:.4f} (running means)", flush=True)

    def on_train_end(self, logs=None):
        self._timed_to = time.perf_counter()

    def samples_per_second(self) -> float:
        """Global samples per second over the steps after the first (NaN before two
        steps ran)."""
        if self._timed_to is None or self.steps < 2:
            return float("nan")
        return (self.steps - 1) * self.global_batch_size / (self._timed_to - self._timed_from)

"""A Keras callback that reports the bytes each training step communicated."""

from __future__ import annotations

import keras

from des_tf.comm.accounting import KINDS, counters
from des_tf.comm.runtime import rank


class CommBytesLogger(keras.callbacks.Callback):
    """Adds `bytes_sent` and `bytes_received` (this rank, this step, all collectives) to
    the batch logs, keeps per-kind totals, and on rank 0 prints the per-step average by
    collective kind at the end of every epoch."""

    def __init__(self, verbose: bool = True):
        super().__init__()
        self.verbose = verbose
        self.steps = 0
        self.totals = {direction: dict.fromkeys(KINDS, 0) for direction in ("sent", "received")}
        self._before = counters().snapshot()

    def on_train_batch_begin(self, batch, logs=None):
        self._before = counters().snapshot()

    def on_train_batch_end(self, batch, logs=None):
        after = counters().snapshot()
        self.steps += 1
        for direction, per_kind in self.totals.items():
            step = {k: after[direction][k] - self._before[direction][k] for k in KINDS}
            for kind, value in step.items():
                per_kind[kind] += value
            if logs is not None:
                logs[f"bytes_{direction}"] = sum(step.values())

    def per_step(self) -> dict[str, dict[str, float]]:
        """Average bytes per training step so far, by direction and collective kind."""
        return {d: {k: v / max(self.steps, 1) for k, v in per_kind.items()}
                for d, per_kind in self.totals.items()}

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose and rank() == 0 and self.steps:
            sent = self.per_step()["sent"]
            detail = ", ".join(f"{k} {v / 1024:.1f} KiB" for k, v in sent.items() if v)
            print(f"rank 0 sent {sum(sent.values()) / 1024:.1f} KiB per step ({detail})",
                  flush=True)

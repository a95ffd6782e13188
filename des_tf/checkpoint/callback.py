"""CheckpointCallback: sharded checkpoints from Keras `fit`, and resuming from the latest."""

from __future__ import annotations

import keras

from des_tf import comm
from des_tf.checkpoint import manifest, sharded


class CheckpointCallback(keras.callbacks.Callback):
    """Saves a sharded checkpoint every `every_n_steps` optimizer steps (if given) and at
    the end of every epoch, keeping the newest `keep`. Use it on every rank.

    Args:
      directory: where the `ckpt-<step>` folders go (shared by all ranks).
      every_n_steps: also save whenever the optimizer's step count is a multiple of it.
      keep: checkpoints kept (older ones are deleted once a newer one is complete).
      restore: at the start of `fit`, once Keras has built the model and its optimizer,
        restore the newest checkpoint in `directory` if there is one; `restored_step`
        then holds its step (the caller skips that many batches of its data).
    """

    def __init__(self, directory: str, every_n_steps: int | None = None, keep: int = 3,
                 restore: bool = False):
        super().__init__()
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        self.directory, self.every_n_steps, self.keep = directory, every_n_steps, keep
        self.restore = restore
        self.restored_step: int | None = None
        self.last_saved_step: int | None = None

    def on_train_begin(self, logs=None):
        comm.assert_same_config(manifest.model_config(self.model), "model configuration")
        if self.restore:
            self.restored_step = sharded.restore_latest(self.model, self.directory)
            self.last_saved_step = self.restored_step

    def _save(self) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        if step != self.last_saved_step:
            sharded.save(self.model, self.directory, step, keep=self.keep)
            self.last_saved_step = step

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if self.every_n_steps and step % self.every_n_steps == 0:
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        self._save()

"""Keras' file-writing callbacks for jobs on several ranks: only rank 0 writes.

Keras' callbacks do not know about ranks: on a multi-rank DESStrategy every rank would
write the same file (h5 files then fail with "unable to lock file", zip files may
interleave). Saving a model with DES layers is also a collective (each layer gathers
its table from all ranks), so the save cannot simply be left out on other ranks. Here:

- `ModelCheckpoint` and `BackupAndRestore`: Keras' own, with every rank saving and only
  rank 0's file kept (other ranks write to TF's in-memory file system and delete it);
  all ranks decide alike whether to save, and restore from the same backup.
- `on_rank_zero(*callbacks)`: the callbacks on rank 0 and none elsewhere, for callbacks
  that only write (TensorBoard, CSVLogger, ...): the metrics they log at epoch ends are
  already global (des_tf.strategy).
- `rank_zero_file(path)`: the same for your own `model.save` / `save_weights` calls.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator

import keras

from des_tf import comm, fileio

# Where ranks other than 0 write the files they do not keep.
SCRATCH_ROOT = "ram://des_tf_scratch"
_scratch_ids = itertools.count()


def _scratch_folder() -> str:
    """A new folder for a file this rank writes but does not keep."""
    return fileio.join(SCRATCH_ROOT, f"{os.getpid()}-{next(_scratch_ids)}")


@contextlib.contextmanager
def rank_zero_file(path: str) -> Iterator[str]:
    """The path this rank should hand to Keras' saving: `path` on rank 0; elsewhere a
    scratch path in TF's in-memory file system, deleted on exit. Every rank saves (a model
    with DES layers saves collectively), and only rank 0's file remains:

        with des_tf.callbacks.rank_zero_file("model.keras") as target:
            model.save(target)
    """
    if comm.rank() == 0:
        yield path
        return
    scratch = _scratch_folder()
    try:
        yield fileio.join(scratch, os.path.basename(path))
    finally:
        fileio.rmtree(scratch)


def on_rank_zero(*callbacks: keras.callbacks.Callback) -> list[keras.callbacks.Callback]:
    """`callbacks` on rank 0, an empty list on other ranks: for callbacks that only write
    files and run no collective (TensorBoard, CSVLogger)."""
    return list(callbacks) if comm.rank() == 0 else []


def _rank_zero_logs(logs: dict | None) -> dict | None:
    """Rank 0's logs on every rank, so that every rank takes the same decisions from them
    (a step's logs are the rank's own; epoch logs are global)."""
    if comm.size() == 1 or logs is None:
        return logs
    return comm.gather_json({name: float(value) for name, value in logs.items()})[0]


class ModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """keras.callbacks.ModelCheckpoint (same arguments) for multi-rank jobs: use it on
    every rank. Each save runs on every rank and only rank 0 writes `filepath`; with
    `save_best_only` every rank compares rank 0's value of the monitored metric."""

    def __init__(self, filepath, *args, **kwargs):
        super().__init__(filepath, *args, **kwargs)
        if comm.rank() != 0:
            self.verbose = 0
        self._scratch: str | None = None  # set during a save on ranks other than 0

    def _save_model(self, epoch, batch, logs):
        self._scratch = None if comm.rank() == 0 else _scratch_folder()
        try:
            super()._save_model(epoch, batch, _rank_zero_logs(logs))
        finally:
            if self._scratch is not None:
                fileio.rmtree(self._scratch)

    def _get_file_path(self, epoch, batch, logs):
        path = super()._get_file_path(epoch, batch, logs)
        return path if self._scratch is None else fileio.join(self._scratch,
                                                               os.path.basename(path))


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """keras.callbacks.BackupAndRestore (same arguments) for multi-rank jobs: use it on
    every rank, with a `backup_dir` every rank can read (a shared file system). Every rank
    takes part in each backup and only rank 0 writes it; at the start of `fit` either every
    rank restores the same backup or none does (a backup only some ranks see is an error)."""

    def on_train_begin(self, logs=None):
        found = comm.gather_json(fileio.exists(self._weights_path))
        if any(found) and not all(found):
            seeing = [rank for rank, seen in enumerate(found) if seen]
            raise RuntimeError(
                f"BackupAndRestore: only ranks {seeing} of {len(found)} see the backup "
                f"{self._weights_path}; backup_dir must be on a file system every rank shares")
        super().on_train_begin(logs)

    def _save_model(self):
        if comm.rank() == 0:
            super()._save_model()
            return
        with rank_zero_file(self._weights_path) as scratch:  # the weights only: no metadata
            self.model.save_weights(scratch)

    def on_train_end(self, logs=None):
        if comm.rank() == 0:
            super().on_train_end(logs)

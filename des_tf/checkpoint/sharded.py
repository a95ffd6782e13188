"""Sharded save and restore (collectives: every rank calls them together).

Save: rank 0 creates a temporary folder; every rank writes its tables' rows there; rank 0
writes the dense state; the ranks agree that all writes succeeded; rank 0 then writes the
manifest, moves the folder to `ckpt-<step>` (fileio.replace_tree: a rename on a local
disk, a copy with the manifest last elsewhere) and deletes checkpoints beyond the last
`keep`. Any TensorFlow file system works (des_tf.fileio). A failure on any rank raises
CheckpointError on every rank and leaves earlier checkpoints untouched; a crash leaves
only a `.tmp-*` folder that is ignored and removed by the next save.

Restore: every rank verifies and reads every file it needs (all shard files of every
table: it keeps the rows it owns under the current number of ranks), the ranks agree
that all reads succeeded, and only then are tables and dense variables overwritten.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from des_tf import comm, fileio
from des_tf.checkpoint import dense_state, manifest, shard_io
from des_tf.checkpoint.errors import CheckpointError
from des_tf.tables import model_tables, reshard

TEMPORARY_PREFIX = ".tmp-"


def _raise_on_failures(error: str | None, action: str) -> None:
    """Gathers every rank's error (None = success); raises on all ranks if any failed."""
    failed = comm.failures(error)
    if failed:
        detail = "\n".join(f"  rank {r}: {e}" for r, e in failed.items())
        raise CheckpointError(f"{action} failed on ranks {sorted(failed)}:\n{detail}")


def _guard(action) -> str | None:
    """Runs `action()`; returns the error it raised as text (None on success)."""
    try:
        action()
    except (OSError, CheckpointError, ValueError, tf.errors.OpError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _prune(directory: str, keep: int) -> None:
    """Deletes all but the newest `keep` checkpoints, and leftovers of crashed saves."""
    for _, path in manifest.committed(directory)[:-keep]:
        fileio.rmtree(path)
    for name in fileio.listdir(directory):
        if name.startswith(TEMPORARY_PREFIX) or name.endswith(fileio.REPLACED_SUFFIX):
            fileio.rmtree(fileio.join(directory, name))


def save(model: keras.Model, directory: str, step: int | None = None, keep: int = 3) -> str:
    """Writes a sharded checkpoint of `model` at `step` (default: the optimizer's
    iteration count) into `directory`/ckpt-<step>; returns that path. Keeps the newest
    `keep` checkpoints. Raises CheckpointError on every rank if any rank fails."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if step is None:
        step = int(model.optimizer.iterations.numpy())
    rank, size = comm.rank(), comm.size()
    comm.assert_same_config({**manifest.model_config(model), "step": step,
                             "directory": fileio.absolute(directory)}, "checkpoint settings")
    final = fileio.join(directory, manifest.checkpoint_name(step))
    temporary = fileio.join(directory, TEMPORARY_PREFIX + manifest.checkpoint_name(step))

    def prepare():
        if rank == 0:
            fileio.rmtree(temporary)
            fileio.makedirs(temporary)

    _raise_on_failures(_guard(prepare), f"checkpoint of step {step} into {directory}")
    files, rows = {}, {}

    def write_shards():
        seed = manifest.sharding_seed(model)
        for name, (layer, table) in model_tables(model).items():
            file = manifest.shard_file(name, rank, size)
            arrays = reshard.written_rows(layer, table, rank, size, seed)
            files[file] = shard_io.write_arrays(fileio.join(temporary, file), arrays)
            rows[name] = len(arrays["keys"])
        if rank == 0:
            files[manifest.DENSE_FILE] = shard_io.write_arrays(
                fileio.join(temporary, manifest.DENSE_FILE), dense_state.capture(model))

    error = _guard(write_shards)
    reports = comm.gather_json({"error": error, "files": files, "rows": rows})
    failed = {r: x["error"] for r, x in enumerate(reports) if x["error"]}
    if failed:
        if rank == 0:
            fileio.rmtree(temporary)
        detail = "\n".join(f"  rank {r}: {e}" for r, e in failed.items())
        raise CheckpointError(f"checkpoint of step {step} into {directory} failed on ranks "
                              f"{sorted(failed)} (earlier checkpoints are intact):\n{detail}")

    def commit():
        if rank != 0:
            return
        all_files = {f: info for report in reports for f, info in report["files"].items()}
        table_rows = {name: sum(r["rows"][name] for r in reports) for name in rows}
        try:
            manifest.write(temporary, manifest.describe(
                step, model, all_files, table_rows, dense_state.optimizer_shapes(model)))
            fileio.replace_tree(temporary, final, last=manifest.MANIFEST)
        except (OSError, tf.errors.OpError):
            fileio.rmtree(temporary)
            raise
        _prune(directory, keep)

    _raise_on_failures(_guard(commit), f"committing the checkpoint of step {step} "
                                       f"(earlier checkpoints are intact)")
    return final


def latest(directory: str) -> str | None:
    """Path of the newest complete checkpoint in `directory` (as this process sees it)."""
    found = manifest.committed(directory)
    return found[-1][1] if found else None


def restore(model: keras.Model, path: str) -> int:
    """Restores the checkpoint folder `path` (written by any number of ranks) into the
    built `model`; returns its step. Nothing changes unless every rank read and verified
    everything it needs; otherwise CheckpointError (naming the bad file) on every rank."""
    comm.assert_same_config({**manifest.model_config(model), "path": fileio.absolute(path)},
                            "restore settings")
    rank, size = comm.rank(), comm.size()
    seed = manifest.sharding_seed(model)
    tables = model_tables(model)
    loaded: dict = {}

    def read_everything():
        dense_state.ensure_built(model)
        undecided = [layer.name for layer, _ in tables.values()
                     if layer.plan_in_effect is None]
        if undecided:
            raise CheckpointError(
                f"layers {undecided} have plan='auto' and have not chosen their plan, which "
                "decides which rows each rank loads: call des_tf.layers.plan_tables(model, "
                "batch) (or the model on one batch, eagerly) before restoring")
        saved = manifest.read(path)
        manifest.check_matches(saved, model, path)
        files = saved["files"]
        dense = shard_io.read_arrays(fileio.join(path, manifest.DENSE_FILE),
                                     files[manifest.DENSE_FILE])
        dense_state.check(dense, model, path)
        for name, (layer, table) in tables.items():
            parts = []
            for writer in range(saved["ranks"]):
                file = manifest.shard_file(name, writer, saved["ranks"])
                if file not in files:
                    raise CheckpointError(f"checkpoint {path}: the manifest lists no file {file}")
                shard = shard_io.read_arrays(fileio.join(path, file), files[file])
                # A table copied on every rank (plan="replicated") loads every row.
                parts.append(shard if reshard.replicated(layer)
                             else reshard.owned(shard, rank, size, seed))
            num_slots = int(table.export().slots.shape[1])
            loaded[name] = reshard.concatenate(parts, table.dim, num_slots)
        loaded["step"], loaded["dense"] = saved["step"], dense

    _raise_on_failures(_guard(read_everything), f"restoring checkpoint {path}")
    for name, (_, table) in tables.items():
        table.import_rows(loaded[name], clear_first=True)
    dense_state.assign(model, loaded["dense"])
    return int(loaded["step"])


def restore_latest(model: keras.Model, directory: str) -> int | None:
    """Restores the newest complete checkpoint of `directory` (rank 0's view, so all ranks
    load the same one) into the built `model`; returns its step, or None if there is none."""
    path = comm.gather_json(latest(directory))[0]
    return None if path is None else restore(model, path)

"""The manifest: what a checkpoint holds (ranks, sharding seed, step, table specs, dense
variables, every file's sha256), written last, so a checkpoint without one is not one."""

from __future__ import annotations

import json
import re

import keras

from des_tf import comm, fileio
from des_tf.checkpoint.errors import CheckpointError
from des_tf.tables import model_tables

FORMAT = "des-tf-checkpoint/1"
MANIFEST = "manifest.json"
DENSE_FILE = "dense.npz"
_CHECKPOINT = re.compile(r"^ckpt-(\d+)$")
# Table spec entries a resumed run may change: how the next updates are made, not the rows.
_MAY_CHANGE = ("learning_rate", "clipvalue", "clipnorm")


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint of `step` (zero-padded: names sort by step)."""
    return f"ckpt-{step:012d}"


def shard_file(table: str, rank: int, size: int) -> str:
    """File holding rank `rank`'s rows of `table` in a job of `size` ranks."""
    return f"{table}.shard-{rank:05d}-of-{size:05d}.npz"


def sharding_seed(model: keras.Model) -> int:
    """The sharding seed of the model's DESStrategy (0 without one)."""
    return int(getattr(model.distribute_strategy, "sharding_seed", 0))


def model_config(model: keras.Model) -> dict:
    """What every rank must agree on and a checkpoint must match: model class, sharding
    seed, input mode, table specs and dense variable shapes."""
    return {
        "model": type(model).__name__,
        "sharding_seed": sharding_seed(model),
        "input_mode": getattr(model.distribute_strategy, "input_mode", None),
        "tables": {name: table.spec() for name, (_, table) in model_tables(model).items()},
        "dense": [list(v.shape) for v in model.weights],
    }


def committed(directory: str) -> list[tuple[int, str]]:
    """(step, path) of the complete checkpoints in `directory` (those with a manifest),
    oldest first; temporary folders of unfinished writes are ignored."""
    if not fileio.isdir(directory):
        return []
    found = []
    for name in fileio.listdir(directory):
        match = _CHECKPOINT.match(name)
        path = fileio.join(directory, name)
        if match and fileio.exists(fileio.join(path, MANIFEST)):
            found.append((int(match.group(1)), path))
    return sorted(found)


def write(path: str, manifest: dict) -> None:
    """Writes the manifest into checkpoint folder `path` (atomically: fileio.write_text)."""
    fileio.write_text(fileio.join(path, MANIFEST), json.dumps(manifest, indent=1, sort_keys=True))


def read(path: str) -> dict:
    """The manifest of checkpoint folder `path`; CheckpointError if missing or invalid."""
    target = fileio.join(path, MANIFEST)
    try:
        manifest = json.loads(fileio.read_text(target))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read checkpoint manifest {target}: {error}") from error
    if manifest.get("format") != FORMAT:
        raise CheckpointError(f"{target} has format {manifest.get('format')!r}, "
                              f"expected {FORMAT!r}")
    return manifest


def check_matches(manifest: dict, model: keras.Model, path: str) -> None:
    """Raises CheckpointError naming the first difference between the checkpoint's tables
    or dense variables and the model's (learning rates and clipping may differ)."""
    saved, current = manifest["config"], model_config(model)
    if sorted(saved["tables"]) != sorted(current["tables"]):
        raise CheckpointError(f"checkpoint {path} holds tables {sorted(saved['tables'])}, "
                              f"the model has {sorted(current['tables'])}")
    for name, spec in current["tables"].items():
        for key, value in spec.items():
            if key not in _MAY_CHANGE and saved["tables"][name].get(key) != value:
                raise CheckpointError(f"checkpoint {path}: table {name} has {key}="
                                      f"{saved['tables'][name][key]!r}, the model {value!r}")
    if saved["dense"] != current["dense"]:
        raise CheckpointError(f"checkpoint {path}: dense variable shapes {saved['dense']} "
                              f"differ from the model's {current['dense']}")


def describe(step: int, model: keras.Model, files: dict, rows: dict[str, int],
             optimizer_shapes: list) -> dict:
    """The manifest of a checkpoint of `model` at `step` whose files are `files`."""
    return {"format": FORMAT, "step": step, "ranks": comm.size(),
            "sharding_seed": sharding_seed(model), "config": model_config(model),
            "table_rows": rows, "dense_variables": [v.path for v in model.weights],
            "optimizer_shapes": optimizer_shapes, "files": files}

"""A DES layer's table in Keras' own weight files: `model.save`, `save_weights`, the
callbacks that call them, and `keras.models.load_model` / `load_weights`.

Saving is a collective (every rank must save together): the rows of all ranks, with
their optimizer slots and metadata, are gathered, so the file any rank writes holds the
whole table ordered by key, the same whatever the number of ranks that wrote it.
Loading keeps the rows this rank owns under the current number of ranks (every row for
a table copied on every rank), so a file written by N ranks loads on any M, or in one
process; a plan="auto" layer that has not chosen its plan holds them until it does.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from des_tf import comm
from des_tf.tables import TableRows, reshard

# Names of the table's arrays in the layer's part of a Keras weights file.
STORE_KEYS = {field: f"table_{field}" for field in TableRows._fields}


def save(layer, store) -> None:
    """Writes `layer`'s whole table (all ranks' rows) into the Keras weights `store`.
    Raises ValueError on every rank, before gathering a row, if the table is larger
    than the strategy's `keras_file_max_bytes`."""
    strategy = layer.strategy
    rows = reshard.written_rows(layer, layer.table, strategy.rank, strategy.size,
                                strategy.sharding_seed)
    local_bytes = sum(array.nbytes for array in rows.values())
    total_bytes = int(comm.allreduce(tf.constant(local_bytes, tf.int64)).numpy())
    if total_bytes > strategy.keras_file_max_bytes:
        raise ValueError(
            f"DES layer {layer.name!r}: its table holds {total_bytes / 2**20:.1f} MiB over all "
            f"ranks, more than one Keras file may hold (DESStrategy(keras_file_max_bytes="
            f"{strategy.keras_file_max_bytes})). Save it with des_tf.checkpoint.save(model, "
            "directory), which writes each rank's rows to a file of its own, or raise the limit")
    gathered = {field: comm.allgather(tf.constant(array)).numpy()
                for field, array in rows.items()}
    order = np.argsort(gathered["keys"], kind="stable")
    for field, key in STORE_KEYS.items():
        store[key] = gathered[field][order]


def load(layer, store) -> None:
    """Reads `layer`'s table from the Keras weights `store` and keeps this rank's rows
    (see the module docstring). Raises ValueError if the file holds no table or one of
    another shape."""
    missing = [key for key in STORE_KEYS.values() if key not in store]
    if missing:
        raise ValueError(
            f"DES layer {layer.name!r}: the weights file holds no table rows (missing "
            f"{missing}); it was not written by des-tf's Keras saving")
    rows = {field: np.asarray(store[key]) for field, key in STORE_KEYS.items()}
    num_slots = int(layer.table.export().slots.shape[1])
    expected = {"values": (layer.dim,), "slots": (num_slots, layer.dim), "metadata": (3,)}
    for field, shape in expected.items():
        if rows[field].shape[1:] != shape or len(rows[field]) != len(rows["keys"]):
            raise ValueError(
                f"DES layer {layer.name!r}: the file's table {field} have shape "
                f"{rows[field].shape}, this layer's are [{len(rows['keys'])}, "
                f"{', '.join(map(str, shape))}] (another dim or table optimizer?)")
    layer.loaded_rows = rows
    import_loaded_rows(layer)


def import_loaded_rows(layer) -> None:
    """Puts the rows `load` kept into the layer's table, once its plan is known (it says
    which rows this rank holds); until then they wait in `layer.loaded_rows`."""
    rows = getattr(layer, "loaded_rows", None)
    if rows is None or layer.plan_in_effect is None:
        return
    strategy = layer.strategy
    if not reshard.replicated(layer):
        rows = reshard.owned(rows, strategy.rank, strategy.size, strategy.sharding_seed)
    layer.table.import_rows(TableRows(*(rows[field] for field in TableRows._fields)),
                            clear_first=True)
    layer.loaded_rows = None

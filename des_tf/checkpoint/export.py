"""Export for serving: one SavedModel holding every rank's rows, whose `serve` function
runs the model in a single process with no Horovod and no collective. Tables answer
with `find`: a key never trained reads as a zero row. Loading it needs TensorFlow and
the des_tf op library only."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from des_tf import comm, fileio, ops_library
from des_tf.checkpoint import manifest, reshard
from des_tf.checkpoint.errors import CheckpointError
from des_tf.layers.base import serving
from des_tf.optimizers import SGD
from des_tf.tables import DynamicTable, TableRows, model_tables


def _relaxed_spec(x) -> tf.TypeSpec:
    """The type spec of `x` with any batch size."""
    if isinstance(x, tf.RaggedTensor):
        return tf.RaggedTensorSpec([None, *x.shape[1:]], x.dtype, x.ragged_rank,
                                   x.row_splits.dtype)
    if isinstance(x, tf.SparseTensor):
        return tf.SparseTensorSpec([None, *x.shape[1:]], x.dtype)
    x = tf.convert_to_tensor(x)
    return tf.TensorSpec([None, *x.shape[1:]], x.dtype)


def _gathered_table(layer, table: DynamicTable, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values) of `table` over all ranks, each row once (a collective)."""
    rows = reshard.written_rows(layer, table, comm.rank(), comm.size(), seed)
    return (comm.allgather(tf.constant(rows["keys"])).numpy(),
            comm.allgather(tf.constant(rows["values"])).numpy())


def _serving_table(name: str, table: DynamicTable, keys: np.ndarray, values: np.ndarray
                   ) -> DynamicTable:
    """A table holding `keys` -> `values`, no optimizer state, zeros for other keys. Its
    op name is unique: a reloaded SavedModel shares resources between equal names."""
    spec = table.spec()
    served = DynamicTable(spec["dim"], optimizer=SGD(spec["learning_rate"]),
                          initializer="zeros", seed=spec["seed"], capacity_hint=len(keys),
                          name=f"served_{name}")
    served.import_rows(TableRows(keys, values, np.zeros([len(keys), 0, spec["dim"]], np.float32),
                                 np.zeros([len(keys), 3], np.int64)))
    return served


def _write(model: keras.Model, path: str, example_features, gathered: dict) -> None:
    """Builds the serving tables and writes the SavedModel to `path` (atomically)."""
    tables = model_tables(model)
    served = {layer: _serving_table(name, table, *gathered[name])
              for name, (layer, table) in tables.items()}

    def serve(features):
        with serving(served):
            return model(features, training=False)

    # Keras' ExportArchive rejects ragged input specs, so the SavedModel root is built
    # as it builds it: a trackable holding the variables and tables the function uses.
    root = tf.Module()
    root.model_variables = list(model.variables)
    root.tables = list(served.values())
    signature = tf.nest.map_structure(_relaxed_spec, example_features)
    root.serve = tf.function(serve, input_signature=[signature], autograph=False)
    temporary = path.rstrip("/") + ".partial"
    fileio.rmtree(temporary)
    tf.saved_model.save(root, temporary)
    fileio.replace_tree(temporary, path, last="saved_model.pb")


def export_for_serving(model: keras.Model, path: str, example_features) -> None:
    """Writes a SavedModel of `model` to `path` whose `serve(features)` returns the
    model's inference output. A collective: call it on every rank; rank 0 gathers all
    tables' rows (they must fit in its memory) and writes. `example_features` is one
    batch of model inputs (any batch size), giving the signature.
    Raises CheckpointError on every rank if rank 0 cannot write."""
    fileio.check(path)
    seed = manifest.sharding_seed(model)
    gathered = {name: _gathered_table(layer, table, seed)
                for name, (layer, table) in model_tables(model).items()}
    error = None
    if comm.rank() == 0:
        try:
            _write(model, path, example_features, gathered)
        except (OSError, ValueError, TypeError, tf.errors.OpError) as failure:
            error = f"{type(failure).__name__}: {failure}"
    failed = comm.failures(error)
    if failed:
        raise CheckpointError(f"exporting the model to {path} failed on rank 0: {failed[0]}")


def load_for_serving(path: str):
    """The exported SavedModel; call `.serve(features)`. Loads the des_tf op library
    first (the tables' ops live there); needs no Horovod."""
    ops_library.load()
    return tf.saved_model.load(path)

"""Export for serving: one SavedModel holding every rank's rows that stock TensorFlow
Serving loads: only core TensorFlow ops (each table frozen into a MutableHashTable and a
variable of rows, served_table.py; a key never trained reads as a zero row), and a
`serving_default` signature whose inputs are named after the features (a multi-hot
feature `f` as `f_values` + `f_row_lengths`). Its `serve(features)` function takes the
model's feature dict for Python callers. It runs in one process, with no Horovod, no
collective and no des_tf."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from des_tf import comm, fileio
from des_tf.checkpoint import manifest
from des_tf.checkpoint.errors import CheckpointError
from des_tf.checkpoint.served_table import ServedTable
from des_tf.layers.base import serving
from des_tf.tables import DynamicTable, model_tables, reshard


def _relaxed_spec(x) -> tf.TypeSpec:
    """The type spec of `x` with any batch size."""
    if isinstance(x, tf.RaggedTensor):
        return tf.RaggedTensorSpec([None, *x.shape[1:]], x.dtype, x.ragged_rank,
                                   x.row_splits.dtype)
    x = tf.convert_to_tensor(x)
    return tf.TensorSpec([None, *x.shape[1:]], x.dtype)


def _gathered_table(layer, table: DynamicTable, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values) of `table` over all ranks, each row once (a collective)."""
    rows = reshard.written_rows(layer, table, comm.rank(), comm.size(), seed)
    return (comm.allgather(tf.constant(rows["keys"])).numpy(),
            comm.allgather(tf.constant(rows["values"])).numpy())


def _named_inputs(example_features) -> tuple[list[tf.TensorSpec], Callable[[tuple], dict]]:
    """The serving signature's inputs, one tensor per name as a TF Serving client sends
    them, and the function that rebuilds the model's features from them: a dense feature
    keeps its name; a ragged (multi-hot) feature `f` becomes `f_values` (its ids) and
    `f_row_lengths` (ids per sample)."""
    if not isinstance(example_features, dict):
        raise TypeError("export_for_serving needs the model's features as a dict of named "
                        f"tensors, got {type(example_features).__name__}")
    specs, builders = [], []
    for name in sorted(example_features):
        x = example_features[name]
        if isinstance(x, tf.RaggedTensor):
            if x.ragged_rank != 1:
                raise TypeError(f"feature {name!r}: only ragged [batch, None] features can "
                                f"be served, got ragged rank {x.ragged_rank}")
            specs += [tf.TensorSpec([None], x.dtype, f"{name}_values"),
                      tf.TensorSpec([None], tf.int64, f"{name}_row_lengths")]
            builders.append((name, 2, lambda values, lengths: tf.RaggedTensor.from_row_lengths(
                values, lengths, validate=False)))
        elif isinstance(x, (tf.Tensor, np.ndarray)):
            x = tf.convert_to_tensor(x)
            specs.append(tf.TensorSpec([None, *x.shape[1:]], x.dtype, name))
            builders.append((name, 1, lambda value: value))
        else:
            raise TypeError(f"feature {name!r}: a {type(x).__name__} cannot be served; give "
                            "dense or ragged tensors")

    def features(flat) -> dict:
        out, at = {}, 0
        for name, count, build in builders:
            out[name] = build(*flat[at:at + count])
            at += count
        return out

    return specs, features


def _write(model: keras.Model, path: str, example_features, gathered: dict) -> None:
    """Builds the serving tables and writes the SavedModel to `path` (atomically)."""
    tables = model_tables(model)
    served = {layer: ServedTable(*gathered[name], name=f"served_{name}")
              for name, (layer, table) in tables.items()}
    specs, features_of = _named_inputs(example_features)

    def serve_named(*flat):
        with serving(served):
            return {"output": model(features_of(flat), training=False)}

    def serve(features):
        with serving(served):
            return model(features, training=False)

    root = tf.Module()
    root.model_variables = list(model.variables)
    root.tables = list(served.values())
    # Keras' ExportArchive rejects ragged input specs, so the SavedModel root is built
    # as it builds it: a trackable holding the variables and tables the functions use.
    root.serve = tf.function(
        serve, input_signature=[tf.nest.map_structure(_relaxed_spec, example_features)],
        autograph=False)
    signature = tf.function(serve_named, input_signature=specs, autograph=False)
    temporary = path.rstrip("/") + ".partial"
    fileio.rmtree(temporary)
    tf.saved_model.save(root, temporary,
                        signatures={"serving_default": signature.get_concrete_function()})
    fileio.replace_tree(temporary, path, last="saved_model.pb")


def export_for_serving(model: keras.Model, path: str, example_features) -> None:
    """Writes a SavedModel of `model` to `path` for TensorFlow Serving (module docstring):
    signature `serving_default` (named inputs, output "output") and `serve(features)`.
    A collective: call it on every rank; rank 0 gathers all tables' rows (they must fit
    in its memory) and writes. `example_features` is one batch of the model's input dict
    (any batch size; dense or ragged [batch, None] tensors), giving the signature.
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
    """The exported SavedModel; call `.serve(features)` or its
    `.signatures["serving_default"]`. Plain TensorFlow: needs neither des_tf's ops nor
    Horovod."""
    return tf.saved_model.load(path)

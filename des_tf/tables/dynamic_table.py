"""DynamicTable: a rank-local int64 key -> float32[dim] embedding table with an in-table
sparse optimizer, as a TensorFlow resource (eager, tf.function, graph mode, checkpoints,
SavedModel).

Rows are created on first `lookup` with values that are a pure function of (key, seed,
initializer), so they do not depend on insertion order or on which rank owns the key.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import tensorflow as tf
from tensorflow.python.ops import gen_resource_variable_ops

from des_tf import ops_library
from des_tf.optimizers import SGD, SparseOptimizer

# `initializer_scale` means: the constant's value, the uniform half-width, or the
# truncated normal's stddev (cut at 2 stddev).
INITIALIZERS = ("zeros", "constant", "uniform", "truncated_normal")
EVICTION_POLICIES = ("min_frequency", "max_age", "row_budget")
_table_ids = itertools.count()


class TableRows(NamedTuple):
    """Rows of a table ordered by key, as `export` returns them and `import_rows` takes them."""

    keys: tf.Tensor       # int64 [n]
    values: tf.Tensor     # float32 [n, dim]
    slots: tf.Tensor      # float32 [n, num_slots, dim] optimizer state
    metadata: tf.Tensor   # int64 [n, 3]: lookup frequency, update count, last update step


def _as_keys(keys) -> tf.Tensor:
    """Python and numpy ints become int64; a tensor keeps its dtype so a wrong one is reported."""
    if isinstance(keys, (tf.Tensor, tf.Variable)):
        return keys
    return tf.convert_to_tensor(keys, dtype=tf.int64)


class DynamicTable(tf.saved_model.experimental.TrackableResource):
    """A growable embedding table keyed by 64-bit ids, with its sparse optimizer inside.

    Args:
      dim: row width (>= 1).
      optimizer: a `des_tf.optimizers` config (SGD, Adagrad, Adam, Ftrl); its learning
        rate is the default of `apply_gradients`.
      initializer: one of INITIALIZERS; `initializer_scale` sets its size.
      seed: makes initial rows differ between tables; every rank must use the same one.
      capacity_hint: expected number of rows, to pre-size the index (it grows anyway).
      nonfinite_gradients: "error" rejects an `apply_gradients` call containing NaN/Inf
        before any row changes; "skip" leaves the rows of those keys untouched.
      name: op name prefix.
    """

    def __init__(
        self,
        dim: int,
        *,
        optimizer: SparseOptimizer = SGD(0.01),
        initializer: str = "uniform",
        initializer_scale: float = 0.05,
        seed: int = 0,
        capacity_hint: int = 0,
        nonfinite_gradients: str = "error",
        name: str = "dynamic_table",
    ):
        super().__init__()
        self._ops = ops_library.load()
        self.dim = dim
        self.optimizer = optimizer
        self._attrs = dict(
            dim=dim,
            initializer=initializer,
            initializer_scale=float(initializer_scale),
            seed=seed,
            optimizer=optimizer.name,
            hyperparameter_names=list(optimizer.hyperparameters()),
            hyperparameter_values=list(optimizer.hyperparameters().values()),
            nonfinite_gradients=nonfinite_gradients,
            capacity_hint=capacity_hint,
        )
        self._name = name
        self._eager_shared_name = f"des_table_{next(_table_ids)}"
        self.resource_handle  # create now, so bad arguments fail here  # noqa: B018

    def _create_resource(self) -> tf.Tensor:
        # Eagerly, a unique shared name keeps TF's kernel cache from handing two tables
        # the same resource. In a traced graph (tf.function, SavedModel) an empty name
        # makes the resource private to its kernel, so a reloaded model gets its own.
        shared_name = self._eager_shared_name if tf.executing_eagerly() else ""
        return self._ops.des_embedding_table(shared_name=shared_name, name=self._name,
                                             **self._attrs)

    def _destroy_resource(self) -> None:
        gen_resource_variable_ops.destroy_resource_op(self.resource_handle,
                                                      ignore_lookup_error=True)

    def spec(self) -> dict:
        """What defines the table's rows (dim, optimizer and its hyper-parameters,
        initializer, seed), as JSON-able values: checkpoints and config checks compare it."""
        attrs = self._attrs
        return {"dim": self.dim, "optimizer": self.optimizer.name,
                "learning_rate": self.optimizer.learning_rate_config(),
                "clipvalue": self.optimizer.clipvalue, "clipnorm": self.optimizer.clipnorm,
                "hyperparameters": self.optimizer.hyperparameters(),
                "initializer": attrs["initializer"],
                "initializer_scale": attrs["initializer_scale"], "seed": attrs["seed"]}

    def lookup(self, keys) -> tf.Tensor:
        """Rows of `keys` (shape keys.shape + [dim]); missing keys are inserted."""
        return self._ops.des_embedding_table_lookup(self.resource_handle, _as_keys(keys),
                                                    dim=self.dim)

    def find_rows(self, keys, default_value=0.0) -> tuple[tf.Tensor, tf.Tensor]:
        """(rows, found) without inserting; absent keys get `default_value` (scalar or [dim])."""
        return self._ops.des_embedding_table_find(
            self.resource_handle, _as_keys(keys),
            tf.convert_to_tensor(default_value, tf.float32), dim=self.dim)

    def find(self, keys, default_value=0.0) -> tf.Tensor:
        """Rows of `keys` without inserting (for evaluation and serving)."""
        return self.find_rows(keys, default_value)[0]

    def apply_gradients(self, keys, gradients, step, learning_rate=None) -> tf.Tensor:
        """Sums duplicate keys' gradient rows, then updates each distinct row in place.
        Returns the number of rows updated (int64 scalar).

        Args:
          keys: int64 [n]; gradients: float32 [n, dim].
          step: the training step (int64 scalar, 1 for the first update), recorded as the
            rows' last step; a learning-rate schedule is evaluated at step - 1.
          learning_rate: overrides the optimizer's learning rate.
        """
        step = tf.convert_to_tensor(step, tf.int64)
        if learning_rate is None:
            learning_rate = self.optimizer.learning_rate_at(step - 1)
        return self._ops.des_embedding_table_apply_gradients(
            self.resource_handle, _as_keys(keys), tf.convert_to_tensor(gradients, tf.float32),
            step, tf.convert_to_tensor(learning_rate, tf.float32))

    def size(self) -> tf.Tensor:
        """Number of rows (int64 scalar)."""
        return self._ops.des_embedding_table_size(self.resource_handle)

    def memory_bytes(self) -> tf.Tensor:
        """Bytes held for the index, rows, optimizer slots and metadata (int64 scalar)."""
        return self._ops.des_embedding_table_memory_bytes(self.resource_handle)

    def export(self) -> TableRows:
        """Every row with its optimizer slots and metadata, ordered by key."""
        return TableRows(*self._ops.des_embedding_table_export(self.resource_handle,
                                                               dim=self.dim))

    def import_rows(self, rows: TableRows, clear_first: bool = True) -> tf.Operation:
        """Inserts or overwrites `rows` (after removing all rows if `clear_first`)."""
        return self._ops.des_embedding_table_import(self.resource_handle, *rows,
                                                    clear_first=clear_first)

    def remove(self, keys) -> tf.Tensor:
        """Removes `keys`; returns those that were present."""
        return self._ops.des_embedding_table_remove(self.resource_handle, _as_keys(keys))

    def evict(self, policy: str, threshold: int) -> tf.Tensor:
        """Evicts rows and returns their keys (ascending). Policies:

        - "min_frequency": rows looked up fewer than `threshold` times;
        - "max_age": rows not updated within the last `threshold` steps (TTL);
        - "row_budget": least frequent rows (then least recently updated, then smallest
          key) until at most `threshold` rows remain.
        """
        if policy not in EVICTION_POLICIES:
            raise ValueError(f"unknown eviction policy {policy!r}; expected one of "
                             f"{EVICTION_POLICIES}")
        return self._ops.des_embedding_table_evict(
            self.resource_handle, tf.convert_to_tensor(threshold, tf.int64), policy=policy)

    # Checkpointing (tf.train.Checkpoint, Keras): the table saves as its exported rows.
    def _serialize_to_tensors(self) -> dict[str, tf.Tensor]:
        return dict(zip(TableRows._fields, self.export()))

    def _restore_from_tensors(self, restored_tensors: dict[str, tf.Tensor]) -> tf.Operation:
        return self.import_rows(TableRows(**restored_tensors), clear_first=True)

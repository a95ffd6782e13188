"""Normalises the id inputs of DES layers to ragged tensors with one row per segment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import tensorflow as tf

IdInput = tf.RaggedTensor | tf.SparseTensor | tf.Tensor


def _field_to_ragged(x: IdInput, what: str, dtype: tf.DType) -> tf.RaggedTensor:
    """A field as ragged [batch, None]: ragged as is, sparse by its values, a dense [batch]
    tensor as one id per sample, a dense [batch, n] tensor as n ids per sample."""
    if isinstance(x, tf.SparseTensor):
        x = tf.RaggedTensor.from_sparse(x)
    elif not isinstance(x, tf.RaggedTensor):
        x = tf.convert_to_tensor(x)
        x = tf.RaggedTensor.from_tensor(x[:, None] if x.shape.rank == 1 else x)
    if x.ragged_rank != 1 or x.shape.rank != 2:
        raise ValueError(f"{what} must be [batch, None] ids per sample, got shape {x.shape}")
    return _checked_dtype(x, what, dtype)


def _checked_dtype(x, what: str, dtype: tf.DType):
    if x.dtype != dtype:
        raise tf.errors.InvalidArgumentError(
            None, None, f"{what} must be {dtype.name}, got {x.dtype.name}")
    return x


def _as_fields(x) -> list:
    if isinstance(x, Mapping):
        return [x[k] for k in sorted(x)]
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        return list(x)
    return [x]


class Fields(NamedTuple):
    """A layer's id input as ragged [batch, fields, None]."""

    ids: tf.RaggedTensor
    weights: tf.RaggedTensor | None
    count: int  # number of fields
    # The caller's id and weight tensors, flattened: layers called on the very same
    # tensors in one traced step share one id exchange (input_distribution.exchange_fields).
    source: tuple = ()
    # Every field holds exactly one id per sample (dense [batch] inputs): the segments are
    # then built from the stacked ids directly, without ragged concatenation.
    one_id_per_field: bool = False

    def segments(self, per_field: bool) -> tuple[tf.RaggedTensor, tf.RaggedTensor | None]:
        """(ids, weights) with one ragged row per output row: per (sample, field), sample-
        major, when `per_field`; else per sample, all fields merged."""
        if self.one_id_per_field and not per_field:
            cut = self._per_sample_of_one_id_per_field
        else:
            cut = (lambda r: r.values) if per_field else (lambda r: r.merge_dims(1, 2))
        return cut(self.ids), None if self.weights is None else cut(self.weights)

    def _per_sample_of_one_id_per_field(self, stacked: tf.RaggedTensor) -> tf.RaggedTensor:
        values = stacked.values.values
        rows = tf.range(tf.size(values, out_type=tf.int64)) // self.count
        return tf.RaggedTensor.from_value_rowids(values, rows, nrows=stacked.nrows(),
                                                 validate=False)


def _stack_one_id_per_field(fields: list[tf.Tensor]) -> tf.RaggedTensor:
    """Dense [batch] fields as ragged [batch, fields, 1], sample-major, built with cheap
    uniform row partitions (each (sample, field) row's id index cached)."""
    values = tf.reshape(tf.stack(fields, axis=1), [-1])
    entries = tf.size(values, out_type=tf.int64)
    per_field = tf.RaggedTensor.from_value_rowids(values, tf.range(entries), nrows=entries,
                                                  validate=False)
    return tf.RaggedTensor.from_uniform_row_length(per_field, len(fields), validate=False)


def _one_id_per_sample(fields: list) -> bool:
    return all(not isinstance(f, (tf.RaggedTensor, tf.SparseTensor))
               and tf.convert_to_tensor(f).shape.rank == 1 for f in fields)


def stack_fields(ids, weights, layer: str, replicated: bool) -> Fields:
    """Stacks the fields, in input order (dicts by sorted key).

    `ids`: one field or a list / dict of fields; `weights`: None or the same structure.
    `replicated`: the ids are the global batch, so they must be ragged or sparse
    (DESStrategy cuts dense features to each rank's samples).
    """
    id_fields = _as_fields(ids)
    dense = [i for i, f in enumerate(id_fields)
             if not isinstance(f, (tf.RaggedTensor, tf.SparseTensor))]
    if replicated and dense:
        raise ValueError(f"{layer}: in 'replicated_ids' input mode id fields must be ragged or "
                         f"sparse tensors (dense inputs are cut to each rank's samples); "
                         f"fields {dense} are dense: use tf.RaggedTensor.from_tensor")
    source = tuple(tf.nest.flatten((id_fields, weights)))
    weight_fields = None if weights is None else _as_fields(weights)
    if weight_fields is not None and len(weight_fields) != len(id_fields):
        raise ValueError(f"{layer}: {len(weight_fields)} weight fields for {len(id_fields)} "
                         "id fields")
    if _one_id_per_sample(id_fields) and (weight_fields is None
                                          or _one_id_per_sample(weight_fields)):
        stacked_ids = _stack_one_id_per_field(
            [_checked_dtype(tf.convert_to_tensor(f), f"{layer}: ids of field {i}", tf.int64)
             for i, f in enumerate(id_fields)])
        stacked_weights = None if weight_fields is None else _stack_one_id_per_field(
            [tf.cast(w, tf.float32) for w in weight_fields])
        return Fields(stacked_ids, stacked_weights, len(id_fields), source,
                      one_id_per_field=True)
    stacked = tf.stack([_field_to_ragged(f, f"{layer}: ids of field {i}", tf.int64)
                        for i, f in enumerate(id_fields)], axis=1)
    if weights is None:
        return Fields(stacked, None, len(id_fields), source)
    stacked_weights = tf.stack(
        [_field_to_ragged(tf.cast(w, tf.float32), f"{layer}: weights of field {i}", tf.float32)
         for i, w in enumerate(weight_fields)], axis=1)
    tf.debugging.assert_equal(stacked.values.row_lengths(), stacked_weights.values.row_lengths(),
                              message=f"{layer}: weights must have one value per id")
    return Fields(stacked, stacked_weights, len(id_fields), source)

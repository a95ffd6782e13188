"""A tf.data reader of Criteo-format TSV files (plain or gzip) for DES training.

Every line is checked before it is converted: a line with the wrong column count, a
label other than 0/1, a non-numeric integer or a bad hex id is never mis-parsed. It is
either skipped and counted (`on_malformed="skip"`; `MalformedLines.report()` gives the
counts and the first such line) or the read fails naming file, line and reason
(`on_malformed="raise"`). Categorical ids become int64 keys by hashing them salted with
their column name, so equal hex strings in different columns are different keys. Ops of
des-tf's library read the lines, thousands per call (DesReadLines, des_tf.data.lines),
and check and convert the text, one pass per line (DesParseCriteoLines) and per
multi-hot cell (DesParseIdLists).

Each rank cuts every global batch of raw lines to its own contiguous slice before
parsing (the slice DESStrategy gives), so N ranks read the same samples per step as one
process reading the global batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from des_tf import fileio, ops_library, sharding
from des_tf.data.lines import numbered_lines
from des_tf.data.malformed import REASONS, MalformedLines, line_positions
from des_tf.data.schema import DENSE_FEATURE, CriteoSchema, MultiHotField

ON_MALFORMED = ("skip", "raise")
_KEY_BUCKETS = 2**63 - 1


def hash_ids(column: str, tokens: tf.Tensor | tf.RaggedTensor) -> tf.Tensor | tf.RaggedTensor:
    """int64 keys of a field's ids, salted by the field's name so that equal ids of
    different fields become different keys in a shared table: strings are hashed
    (FarmHash64) then XORed with a hash of the name (joining the strings first cost 15x
    more); integers of any width are widened to int64 and XORed, a bijection per field."""
    salt = tf.constant(_salt(column), tf.int64)

    def keys(t: tf.Tensor) -> tf.Tensor:
        if t.dtype == tf.string:
            t = tf.strings.to_hash_bucket_fast(t, _KEY_BUCKETS)
        elif t.dtype.is_integer:
            t = tf.cast(t, tf.int64)
        else:
            raise TypeError(f"hash_ids({column!r}): ids must be strings or integers, got "
                            f"{t.dtype.name}")
        return tf.bitwise.bitwise_xor(t, salt)

    return tf.ragged.map_flat_values(keys, tokens)


def _salt(column: str) -> int:
    """A field's salt: 63 bits of a hash of its name."""
    return int.from_bytes(hashlib.blake2b(column.encode(), digest_size=8).digest(),
                          "little") & _KEY_BUCKETS


class IdLists(NamedTuple):
    """A multi-hot column of a batch of lines, parsed (DesParseIdLists)."""

    keys: tf.RaggedTensor  # [lines, None]: the kept ids' keys as hash_ids gives them
    well_formed: tf.Tensor  # bool [lines]: empty, or hex ids between separators
    too_long: tf.Tensor  # bool [lines]: more ids than the field's max_length


def parse_id_lists(cells: tf.Tensor, field: MultiHotField, separator: str) -> IdLists:
    """Checks and hashes a multi-hot column in one op: the keys of each cell's first
    `field.max_length` ids (none for an empty or malformed cell), equal to
    `hash_ids(field.name, tf.strings.split(cells, separator))` cut to that length."""
    keys, lengths, well_formed, too_long = ops_library.load().des_parse_id_lists(
        cells, separator=separator, max_length=field.max_length, num_buckets=_KEY_BUCKETS,
        salt=_salt(field.name))
    return IdLists(tf.RaggedTensor.from_row_lengths(keys, lengths, validate=False),
                   well_formed, too_long)


def check_files(paths: Sequence[str]) -> None:
    """Raises a one-line error for the first path that is missing (FileNotFoundError)
    or a folder (IsADirectoryError); any TensorFlow file system (des_tf.fileio)."""
    for path in paths:
        if not fileio.exists(path):
            raise FileNotFoundError(f"Criteo data file {path} does not exist")
        if fileio.isdir(path):
            raise IsADirectoryError(f"{path} is a folder, not a Criteo data file: list the "
                                    "files in it (comma-separated)")


@dataclasses.dataclass
class CriteoReader:
    """Reads Criteo-format files into (features, labels) batches.

    Args:
      paths: files, read in order; names ending in `.gz` are gunzipped.
      schema: the column layout (CriteoSchema).
      on_malformed: "skip" (count, see `malformed`) or "raise".
      split: None (every line), or ("train" | "eval", fraction): a line is in the eval
        split when a hash of its (file, line number) falls below `fraction`, so both
        splits are fixed by the files alone.
    """

    paths: Sequence[str]
    schema: CriteoSchema = CriteoSchema()
    on_malformed: str = "skip"
    split: tuple[str, float] | None = None

    def __post_init__(self):
        if isinstance(self.paths, str):
            self.paths = [self.paths]
        self.paths = list(self.paths)
        if not self.paths:
            raise ValueError("CriteoReader needs at least one file")
        check_files(self.paths)
        if self.on_malformed not in ON_MALFORMED:
            raise ValueError(f"on_malformed must be one of {ON_MALFORMED}, "
                             f"got {self.on_malformed!r}")
        if self.split is not None:
            part, fraction = self.split
            if part not in ("train", "eval") or not 0.0 < fraction < 1.0:
                raise ValueError(f"split must be ('train' | 'eval', fraction in (0, 1)), "
                                 f"got {self.split!r}")
        self.malformed = MalformedLines(self.paths)

    def dataset(self, global_batch_size: int, rank: int = 0, size: int = 1,
                keep_ids_global: bool = False, drop_remainder: bool = False
                ) -> tf.data.Dataset:
        """Batches of this rank's slice of every `global_batch_size` lines (the last,
        shorter global batch is dropped with `drop_remainder`). Every rank yields the same
        number of batches; skipped lines make a rank's batch shorter.

        `keep_ids_global` (DESStrategy's "replicated_ids" input mode): id fields hold the
        whole global batch (ragged, one-hot fields too); dense features and labels are
        still this rank's slice.
        """
        if global_batch_size < size:
            raise ValueError(f"global batch {global_batch_size} is smaller than the "
                             f"{size} ranks")
        # Every line of every file (of the split's part) in order, numbered, in chunks a
        # multiple of the global batch (des_tf.data.lines).
        records = numbered_lines(self.paths, self.split, global_batch_size).rebatch(
            global_batch_size, drop_remainder=drop_remainder)
        if keep_ids_global:
            parse = lambda *batch: self._parse(*batch, ragged_ids=True)  # noqa: E731
        else:
            parse = lambda *batch: self._parse(  # noqa: E731
                *_take_rows(batch, rank, size), ragged_ids=False)
        batches = records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if self.on_malformed == "skip":  # in order: see des_tf.data.malformed
            batches = batches.map(self._record)
        if keep_ids_global:
            batches = batches.map(lambda features, labels: _cut_dense(features, labels,
                                                                      rank, size))
        return batches.prefetch(tf.data.AUTOTUNE)

    def _record(self, features, labels, reasons, too_long, positions):
        with tf.control_dependencies([self.malformed.record(reasons, too_long, positions)]):
            return features, tf.identity(labels)

    def _parse(self, files, lines, text, ragged_ids: bool):
        """Checks and converts a batch of raw lines (DesParseCriteoLines for the fixed
        columns, DesParseIdLists for each multi-hot one). Malformed ones are dropped,
        returning (features, labels, reasons, too_long, positions) for the bookkeeping,
        or raise."""
        schema = self.schema
        labels, integers, present, keys, trailing, reasons = (
            ops_library.load().des_parse_criteo_lines(
                text, num_integer=schema.num_integer, num_trailing=len(schema.multi_hot),
                num_buckets=_KEY_BUCKETS,
                salts=[_salt(name) for name in schema.categorical_columns]))
        id_lists = [parse_id_lists(trailing[:, i], field, schema.id_separator)
                    for i, field in enumerate(schema.multi_hot)]
        if id_lists:  # the last check, in REASONS order
            lists_ok = tf.reduce_all(tf.stack([ids.well_formed for ids in id_lists]), axis=0)
            reasons = tf.where((reasons < 0) & ~lists_ok, len(REASONS) - 1, reasons)
        well_formed = reasons < 0
        every_line = tf.reduce_all(well_formed)

        def kept(x):  # the well-formed lines' rows; the multi-hot keys are ragged
            if isinstance(x, tf.RaggedTensor):
                return tf.cond(every_line, lambda: x, lambda: tf.ragged.boolean_mask(
                    x, well_formed))
            return tf.boolean_mask(x, well_formed)

        features = self._features(kept(integers), kept(present), kept(keys), ragged_ids)
        for field, ids in zip(schema.multi_hot, id_lists):
            features[field.name] = kept(ids.keys)
        labels = kept(labels)[:, None]
        if self.on_malformed == "raise":
            check = _assert_well_formed(well_formed, reasons, files, lines, text, self.paths)
            with tf.control_dependencies([check]):
                return features, tf.identity(labels)
        too_long = tf.zeros(tf.shape(text), tf.bool)
        for ids in id_lists:
            too_long |= ids.too_long
        return features, labels, reasons, too_long, line_positions(files, lines)

    def _features(self, integers, present, keys, ragged_ids: bool):
        """The feature dict of well-formed lines' converted cells, multi-hot fields aside."""
        schema = self.schema
        features = {}
        if schema.integer_mode == "log1p":
            if schema.num_integer:
                features[DENSE_FEATURE] = tf.math.log1p(
                    tf.cast(tf.maximum(integers, 0), tf.float32))
        else:
            log2 = tf.math.log(1.0 + tf.cast(tf.maximum(integers, 0), tf.float64)) / np.log(2.0)
            buckets = tf.cast(tf.floor(2.0 * log2 + 1e-9), tf.int64)  # exact at powers of 2
            buckets = tf.where(integers < 0, tf.constant(-1, tf.int64), buckets)
            buckets = tf.where(present, buckets, tf.constant(-2, tf.int64))
            tokens = tf.strings.as_string(buckets)
            for i, name in enumerate(schema.integer_columns):
                features[name] = _one_hot(hash_ids(name, tokens[:, i]), ragged_ids)
        for i, name in enumerate(schema.categorical_columns):
            features[name] = _one_hot(keys[:, i], ragged_ids)
        return features

def _cut_dense(features: dict, labels: tf.Tensor, rank: int, size: int):
    """This rank's rows of the dense features and labels; (ragged) ids stay global."""
    start, count = sharding.local_rows(tf.shape(labels)[0], rank, size)
    cut = lambda x: x if isinstance(x, tf.RaggedTensor) else x[start:start + count]  # noqa: E731
    return {k: cut(v) for k, v in features.items()}, cut(labels)


def _take_rows(tensors, rank: int, size: int):
    start, count = sharding.local_rows(tf.shape(tensors[0])[0], rank, size)
    return [t[start:start + count] for t in tensors]


def _one_hot(keys: tf.Tensor, ragged: bool) -> tf.Tensor | tf.RaggedTensor:
    return tf.RaggedTensor.from_tensor(keys[:, None]) if ragged else keys


def _assert_well_formed(well_formed, reasons, files, lines, text, paths: Sequence[str]):
    """An assertion naming the first malformed line of the batch."""
    first = tf.argmin(tf.cast(well_formed, tf.int32))
    message = tf.strings.join([
        "malformed line ", tf.gather(tf.constant(list(paths)), files[first]), ":",
        tf.strings.as_string(lines[first]), " (",
        tf.gather(tf.constant(REASONS), tf.maximum(reasons[first], 0)), "): ",
        tf.strings.substr(text[first], 0, 120)])
    return tf.debugging.Assert(tf.reduce_all(well_formed), [message], summarize=1)

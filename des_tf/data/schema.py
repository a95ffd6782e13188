"""The column layout of Criteo-format TSV files and the model features they become.

A line is `label \\t I1..I<n_int> \\t C1..C<n_cat> [\\t M1 ..]`: a 0/1 label, integer
counts (empty = missing, may be negative), categorical ids as hex strings (empty =
missing), then optional multi-hot columns, each a list of hex ids joined by
`id_separator` (empty = no ids).
"""

from __future__ import annotations

import dataclasses

from des_tf.layers.combiners import COMBINERS
from des_tf.models.features import FeatureSpec

INTEGER_MODES = ("log1p", "bucketize")
DENSE_FEATURE = "dense"


@dataclasses.dataclass(frozen=True)
class MultiHotField:
    """A variable-length id-list column.

    Args:
      name: feature name (the key in the feature dict).
      max_length: longer lists keep their first `max_length` ids; the reader counts them.
      combiner: how models built from CriteoSchema.feature_spec() pool the list: "sqrtn"
        (default), "mean" or "sum" (des_tf.layers.combiners). The reader ignores it.
    """

    name: str
    max_length: int = 1024
    combiner: str = "sqrtn"

    def __post_init__(self):
        if self.max_length < 1:
            raise ValueError(f"multi-hot field {self.name!r}: max_length must be >= 1")
        if self.combiner not in COMBINERS:
            raise ValueError(f"multi-hot field {self.name!r}: combiner must be one of "
                             f"{COMBINERS}, got {self.combiner!r}")


@dataclasses.dataclass(frozen=True)
class CriteoSchema:
    """Columns of a Criteo-format file and how integers become features.

    Args:
      num_integer: integer columns I1..In (13 in Criteo).
      num_categorical: hex id columns C1..Cn (26 in Criteo).
      multi_hot: extra id-list columns after the categoricals.
      integer_mode: "log1p" gives one float feature `dense` [batch, num_integer] of
        log1p(max(x, 0)) (missing = 0); "bucketize" turns each integer column into an id
        field (bucket floor(2 * log2(1 + x)), with own ids for negative and missing).
      id_separator: separator of the ids inside a multi-hot column.
    """

    num_integer: int = 13
    num_categorical: int = 26
    multi_hot: tuple[MultiHotField, ...] = ()
    integer_mode: str = "log1p"
    id_separator: str = ","

    def __post_init__(self):
        if self.integer_mode not in INTEGER_MODES:
            raise ValueError(f"integer_mode must be one of {INTEGER_MODES}, "
                             f"got {self.integer_mode!r}")
        if self.num_integer < 0 or self.num_categorical < 0:
            raise ValueError("column counts must be >= 0")
        if len(self.id_separator) != 1 or self.id_separator in "\t\n0123456789abcdefABCDEF":
            raise ValueError(f"id_separator must be one character that is not a tab, newline "
                             f"or hex digit, got {self.id_separator!r}")
        names = self.integer_columns + self.categorical_columns + self.multi_hot_columns
        if len(set(names)) != len(names) or DENSE_FEATURE in names:
            raise ValueError(f"feature names must be unique and not {DENSE_FEATURE!r}: {names}")
        if not self.sparse_features:
            raise ValueError("a schema needs at least one id field")

    @property
    def integer_columns(self) -> tuple[str, ...]:
        return tuple(f"I{i + 1}" for i in range(self.num_integer))

    @property
    def categorical_columns(self) -> tuple[str, ...]:
        return tuple(f"C{i + 1}" for i in range(self.num_categorical))

    @property
    def multi_hot_columns(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.multi_hot)

    @property
    def num_columns(self) -> int:
        """Columns of a well-formed line, the label included."""
        return 1 + self.num_integer + self.num_categorical + len(self.multi_hot)

    @property
    def sparse_features(self) -> tuple[str, ...]:
        """The id fields the reader produces, in column order."""
        bucketized = self.integer_columns if self.integer_mode == "bucketize" else ()
        return bucketized + self.categorical_columns + self.multi_hot_columns

    def feature_spec(self) -> FeatureSpec:
        """The FeatureSpec of a model trained on this schema's features: one-id fields
        summed, each multi-hot field pooled by its own combiner."""
        dense = (DENSE_FEATURE,) if self.integer_mode == "log1p" and self.num_integer else ()
        return FeatureSpec(sparse=self.sparse_features, dense=dense,
                           combiners={field.name: field.combiner for field in self.multi_hot})

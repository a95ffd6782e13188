"""FeatureSpec: which inputs of a CTR model are id fields and which are dense."""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Names of a model's inputs (keys of its feature dict).

    Args:
      sparse: id fields, each int64: ragged [batch, None] (multi-hot), sparse, or dense
        [batch] (one-hot). All fields share a model's tables: salt ids by field upstream.
      dense: float features, each [batch] or [batch, k].
    """

    sparse: tuple[str, ...]
    dense: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.sparse:
            raise ValueError("a FeatureSpec needs at least one sparse (id) field")
        overlap = set(self.sparse) & set(self.dense)
        if overlap:
            raise ValueError(f"fields {sorted(overlap)} are declared both sparse and dense")

    def ids(self, features: dict) -> list:
        """The id fields, in spec order."""
        return [_required(features, name) for name in self.sparse]

    def dense_matrix(self, features: dict) -> tf.Tensor | None:
        """The dense features as one float32 [batch, total width] matrix, or None; a NaN
        or Inf raises InvalidArgumentError naming the features."""
        if not self.dense:
            return None
        columns = [tf.cast(_required(features, name), tf.float32) for name in self.dense]
        matrix = tf.concat([c[:, None] if c.shape.rank == 1 else c for c in columns], axis=1)
        # A NaN / Inf input would silently turn every weight it reaches into NaN.
        return tf.debugging.check_numerics(
            matrix, f"dense features {list(self.dense)} contain NaN or Inf")


def _required(features: dict, name: str):
    if name not in features:
        raise KeyError(f"feature {name!r} of the FeatureSpec is missing from the input "
                       f"(got {sorted(features)})")
    return features[name]

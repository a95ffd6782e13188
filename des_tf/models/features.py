"""FeatureSpec: which inputs of a CTR model are id fields and which are dense."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import tensorflow as tf

from des_tf.layers.combiners import COMBINERS


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Names of a model's inputs (keys of its feature dict).

    Args:
      sparse: id fields, each int64: ragged [batch, None] (multi-hot), sparse, or dense
        [batch] (one-hot). All fields share a model's tables: salt ids by field upstream.
      dense: float features, each [batch] or [batch, k].
      combiners: how the models pool each id field's ids: field name -> "sum", "mean" or
        "sqrtn" (des_tf.layers.combiners); fields not named are summed. A one-id field
        pools the same under every combiner; long id lists want "mean" or "sqrtn", or
        hundreds of summed rows swamp the one-hot fields.
    """

    sparse: tuple[str, ...]
    dense: tuple[str, ...] = ()
    combiners: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.sparse:
            raise ValueError("a FeatureSpec needs at least one sparse (id) field")
        overlap = set(self.sparse) & set(self.dense)
        if overlap:
            raise ValueError(f"fields {sorted(overlap)} are declared both sparse and dense")
        strangers = sorted(set(self.combiners) - set(self.sparse))
        if strangers:
            raise ValueError(f"combiners name {strangers}, which are not sparse fields")
        for name, combiner in self.combiners.items():
            if combiner not in COMBINERS:
                raise ValueError(f"combiner of field {name!r} must be one of {COMBINERS}, "
                                 f"got {combiner!r}")
        # Its own copy: a later change to the caller's mapping cannot alter the spec.
        object.__setattr__(self, "combiners", dict(self.combiners))

    def __hash__(self) -> int:
        """Hashable like any frozen dataclass, though `combiners` is a dict."""
        return hash((self.sparse, self.dense, tuple(sorted(self.combiners.items()))))

    @classmethod
    def from_config(cls, config: Mapping) -> "FeatureSpec":
        """The spec `dataclasses.asdict` gave (as a model config holds it, JSON lists
        included; configs saved before `combiners` existed sum every field)."""
        return cls(sparse=tuple(config["sparse"]), dense=tuple(config.get("dense", ())),
                   combiners=dict(config.get("combiners", {})))

    @property
    def field_combiners(self) -> tuple[str, ...]:
        """The combiner of each id field, in spec order (the layers' per-field form)."""
        return tuple(self.combiners.get(name, "sum") for name in self.sparse)

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

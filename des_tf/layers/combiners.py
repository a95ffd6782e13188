"""Combiners: how a layer turns the weighted sum of a (sample, field)'s rows into its
pooled value, one combiner per field. "sum" keeps the sum; "mean" divides it by the sum
of the ids' weights x_k, "sqrtn" by sqrt(sum x_k^2) (both 1 when no id is given, so an
empty list pools to zeros). The divisors depend only on a sample's own ids, so every rank
computes those of its samples locally, after the partials are summed: a combiner adds no
communication and keeps N-rank training equal to one process."""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from des_tf.layers.inputs import Fields

COMBINERS = ("sum", "mean", "sqrtn")
Combiner = str | Sequence[str]


def validated(combiner: Combiner) -> str | list[str]:
    """`combiner` as a layer keeps it in its config (one string, or a list with one per
    field); ValueError unless it is one of COMBINERS or a non-empty sequence of them."""
    names = [combiner] if isinstance(combiner, str) else list(combiner)
    if not names:
        raise ValueError(f"combiner must be one of {COMBINERS} or one of them per field, "
                         "got an empty sequence")
    unknown = [name for name in names if name not in COMBINERS]
    if unknown:
        raise ValueError(f"combiner must be one of {COMBINERS} (or one of them per field), "
                         f"got {unknown[0]!r}")
    return combiner if isinstance(combiner, str) else names


def per_field(combiner: Combiner, count: int, layer: str) -> tuple[str, ...]:
    """The combiner of each of `count` fields: one string applies to every field; a
    sequence must name one per field, in call order."""
    if isinstance(combiner, str):
        return (combiner,) * count
    if len(combiner) != count:
        raise ValueError(f"{layer}: {len(combiner)} combiners for {count} id fields: give one "
                         "combiner per field, in call order, or one for all")
    return tuple(combiner)


def pools_by_sum(combiner: Combiner) -> bool:
    """Whether every field is sum-pooled (no divisor to apply)."""
    return all(name == "sum" for name in ([combiner] if isinstance(combiner, str) else combiner))


def divisors(fields: Fields, combiners: tuple[str, ...]) -> tf.Tensor:
    """Float32 [samples, fields] divisors of the pooled sums of `fields` (every sample of
    them), each from its field's combiner: 1 for "sum" and for an empty id list."""
    segments, weights = fields.segments(per_field=True)
    if weights is None:  # unit weights: sum x = sum x^2 = the number of ids
        sums = squares = tf.cast(segments.row_lengths(), tf.float32)
    else:
        sums, squares = tf.reduce_sum(weights, axis=1), tf.reduce_sum(weights * weights, axis=1)
    shape = [-1, fields.count]
    mean = tf.constant([name == "mean" for name in combiners])
    sqrtn = tf.constant([name == "sqrtn" for name in combiners])
    total = tf.where(mean, tf.reshape(sums, shape),
                     tf.where(sqrtn, tf.sqrt(tf.reshape(squares, shape)), 1.0))
    return tf.where(tf.equal(total, 0.0), tf.ones_like(total), total)

"""Input distribution: how a DES layer's id occurrences reach the ranks owning their
rows, in the strategy's input mode (docs/design.md section 2), shared by the plans that
exchange ids ("des", "alltoall") and reused by layers reading the very same ids (as
are the unexchanged entries of the plans that move no id occurrence).

Input: this rank's id lists as a ragged tensor with one row per *segment* (an output row:
a (sample, field) pair for embeddings, a sample for LR/FM), rows ordered sample-major.
Output: OwnedEntries, the occurrences this rank owns over the global batch's segments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from des_tf import comm, ops_library
from des_tf.comm.cost import InputMode
from des_tf.layers.index_ops import group_by_owner, row_ids, unique
from des_tf.layers.inputs import Fields
from des_tf.layers.traced_shares import TracedShares


class OwnedEntries(NamedTuple):
    """The id occurrences this rank owns, over all segments of the global batch, in
    segment order (segment_ids never decrease: every input mode keeps it)."""

    ids: tf.Tensor            # int64 [E]
    segment_ids: tf.Tensor    # int64 [E], global segment index
    weights: tf.Tensor        # float32 [E]
    num_segments: tf.Tensor   # int64 scalar: segments in the global batch
    segment_counts: tf.Tensor  # int32 [size]: segments held by each rank
    # (distinct ids, int64 [E] index into them), where the exchange already found them.
    distinct: tuple[tf.Tensor, tf.Tensor] | None = None


def distinct_ids(entries: OwnedEntries) -> tuple[tf.Tensor, tf.Tensor]:
    """(the distinct ids of `entries` in first-occurrence order, each occurrence's int64
    index into them): as the owner's filter numbered them from the few ids each rank
    sent, else DesUnique of the occurrences."""
    if entries.distinct is not None:
        return entries.distinct
    return unique(entries.ids, out_idx=tf.int64)


def _owned(ids, inverse, ids_sent, segments, row_lengths, weights, num_segments, counts,
           strategy) -> OwnedEntries:
    """The occurrences this rank owns, in order, out of every rank's id message
    (DesOwnedOccurrences): `ids_sent[r]` ids from rank r, with an index per occurrence
    into them where that is fewer than its occurrences; `segments[r]` segments whose id
    counts are `row_lengths`, rank-major. Unit weights where none were given."""
    owned = ops_library.load().des_owned_occurrences(
        ids, inverse, ids_sent, segments, tf.cast(row_lengths, tf.int32),
        num_shards=strategy.size, rank=strategy.rank, seed=strategy.sharding_seed)
    owned_weights = (tf.ones_like(owned.owned_ids, tf.float32) if weights is None
                     else tf.gather(weights, owned.positions))
    return OwnedEntries(owned.owned_ids, owned.segment_ids, owned_weights, num_segments,
                        counts, (owned.unique_ids, owned.unique_index))


def serves(earlier_source: tuple, earlier_per_field: bool, source: tuple, per_field: bool
           ) -> bool:
    """Whether the exchange of a layer that read `earlier_source` (segments per field or
    per sample) serves a later layer reading `source`: the very same tensor objects, and
    a per-field exchange also serves per-sample segments, not the reverse."""
    return (len(earlier_source) == len(source)
            and all(a is b for a, b in zip(earlier_source, source))
            and (earlier_per_field or not per_field))


class _EntriesKey(NamedTuple):
    """What shared entries were built from (see shared_entries)."""

    source: tuple
    strategy: object
    per_field: bool
    exchanged: bool


# Entries of the graph being traced, by _EntriesKey.
_SHARED = TracedShares()


def per_sample_entries(entries: OwnedEntries, fields: int) -> OwnedEntries:
    """Entries with one segment per (sample, field) regrouped to one per sample: segments
    are sample-major, so a sample's segment is the per-field one divided by `fields`,
    and the occurrences keep their order (partials are summed exactly as when
    exchanged per sample)."""
    if fields == 1:
        return entries
    return entries._replace(segment_ids=entries.segment_ids // fields,
                            num_segments=entries.num_segments // fields,
                            segment_counts=entries.segment_counts // fields)


def shared_entries(fields: Fields, per_field: bool, strategy, exchanged: bool,
                   build: Callable[[], OwnedEntries]) -> OwnedEntries:
    """`build()`, the entries of a layer's stacked fields (one segment per (sample,
    field) when `per_field`, else per sample; `exchanged`: brought to their owners, else
    this rank's own), or, within one traced step, those an earlier layer built of the
    same kind from the very same id and weight tensors (per-sample segments are derived
    from per-field ones, not the reverse)."""
    if not fields.source:
        return build()
    key, entries = _SHARED.share(
        _EntriesKey(fields.source, strategy, per_field, exchanged),
        lambda key: (key.strategy is strategy and key.exchanged == exchanged
                     and serves(key.source, key.per_field, fields.source, per_field)),
        build)
    return (per_sample_entries(entries, fields.count)
            if key.per_field and not per_field else entries)


def exchange_fields(fields: Fields, per_field: bool, strategy) -> OwnedEntries:
    """exchange_ids of a layer's stacked fields (see shared_entries)."""
    return shared_entries(fields, per_field, strategy, True, lambda: exchange_ids(
        *fields.segments(per_field), fields.count if per_field else 1, strategy))


def exchange_ids(ids: tf.RaggedTensor, weights: tf.RaggedTensor | None, segments_per_sample: int,
                 strategy) -> OwnedEntries:
    """Brings every id occurrence to its owner, in the strategy's input mode. Weights
    travel only when given (unit weights are implied otherwise).

    Wire format (per step and rank; "occurrence" = one id of one segment):
      allgather: the (samples, fields, sent ids) check row (3 int32); the rank's ids
        deduplicated (int64, first-occurrence order) with one int32 inverse index per
        occurrence -- or, when fewer than half of its occurrences repeat an id (2 U >= E),
        its raw ids (int64) and no inverse, whichever is smaller; int32 id counts per
        segment; float32 weights per occurrence if given. Every rank receives them all.
      alltoall: the (samples, fields) check row (2 int32); to each owner, the distinct
        ids it owns (int64) and, per occurrence, an int32 index into them and the int32
        global segment index (one [E, 2] int32 alltoall); float32 weights if given.
      replicated: the check row only.
    In a job of one rank nothing moves: the entries are this rank's occurrences as given.
    """
    if strategy.size == 1:  # every id is this rank's: the entries in their own order
        return local_entries(ids, weights)
    values = ids.values
    entry_weights = None if weights is None else tf.cast(weights.values, tf.float32)
    samples = ids.nrows() // segments_per_sample
    if strategy.input_mode == InputMode.REPLICATED:  # ids are already the global batch
        check_shapes_agree(samples, segments_per_sample, True)
        num_segments = ids.nrows()
        counts = strategy.rows_per_rank(num_segments // segments_per_sample) * segments_per_sample
        return _owned(values, tf.zeros([0], tf.int32), tf.size(values)[None],
                      tf.cast(num_segments, tf.int32)[None], ids.row_lengths(),
                      entry_weights, num_segments, tf.cast(counts, tf.int32),
                      strategy)  # as one message of raw ids
    if strategy.input_mode == InputMode.ALLGATHER:
        return _allgather_ids(ids, entry_weights, samples, segments_per_sample, strategy)
    return _alltoall_ids(ids, entry_weights, samples, segments_per_sample, strategy)


def _exclusive_cumsum(x: tf.Tensor) -> tf.Tensor:
    return tf.cumsum(x, exclusive=True)


def _allgather_ids(ids, entry_weights, samples, segments_per_sample, strategy) -> OwnedEntries:
    """allgather input mode (see exchange_ids): every rank rebuilds every rank's ids."""
    values = ids.values
    distinct, inverse = unique(values, out_idx=tf.int32)
    dedup = 2 * tf.size(distinct) < tf.size(values)
    sent_ids = tf.cond(dedup, lambda: distinct, lambda: values)
    sent_inverse = tf.cond(dedup, lambda: inverse, lambda: tf.zeros([0], tf.int32))
    shapes = check_shapes_agree(samples, segments_per_sample, False,
                                extra=tf.size(sent_ids)[None])
    counts = shapes[:, 0] * shapes[:, 1]
    num_segments = tf.reduce_sum(tf.cast(counts, tf.int64))
    all_lengths = comm.allgather(tf.cast(ids.row_lengths(), tf.int32))
    all_ids = comm.allgather(sent_ids)
    all_inverse = comm.allgather(sent_inverse)
    all_weights = None if entry_weights is None else comm.allgather(entry_weights)
    return _owned(all_ids, all_inverse, shapes[:, 2], counts, all_lengths, all_weights,
                  num_segments, counts, strategy)


def _alltoall_ids(ids, entry_weights, samples, segments_per_sample, strategy) -> OwnedEntries:
    """alltoall input mode (see exchange_ids): each occurrence only to its owner."""
    shapes = check_shapes_agree(samples, segments_per_sample, False)
    counts = shapes[:, 0] * shapes[:, 1]
    num_segments = tf.reduce_sum(tf.cast(counts, tf.int64))
    tf.debugging.assert_less(
        num_segments, tf.constant(2**31, tf.int64),
        message="DES layers: the global batch has 2^31 or more segments (samples x fields), "
                "too many for the int32 segment indices of the alltoall input mode; use "
                "smaller batches or input_mode='allgather_ids'")
    offset = tf.reduce_sum(counts[:strategy.rank])
    segments = row_ids(ids.row_lengths(), tf.int32) + offset
    # Distinct ids and occurrences grouped by owner; each sent occurrence carries its
    # id's index among the distinct ids sent to its owner.
    groups = group_by_owner(ids.values, strategy.size, strategy.sharding_seed)
    received_unique, received_unique_splits = comm.alltoall(groups.distinct,
                                                            groups.distinct_counts)
    index_at_owner = tf.gather(groups.index, groups.order) - tf.gather(
        _exclusive_cumsum(groups.distinct_counts), row_ids(groups.counts, tf.int32))
    pairs = tf.stack([index_at_owner, tf.gather(segments, groups.order)], 1)
    received, received_splits = comm.alltoall(pairs, groups.counts)
    sender = row_ids(received_splits, tf.int32)
    received_ids = tf.gather(received_unique, received[:, 0] + tf.gather(
        _exclusive_cumsum(received_unique_splits), sender))
    received_weights = (tf.ones_like(received_ids, tf.float32) if entry_weights is None
                        else comm.alltoall(tf.gather(entry_weights, groups.order),
                                           groups.counts)[0])
    return OwnedEntries(received_ids, tf.cast(received[:, 1], tf.int64), received_weights,
                        num_segments, counts)


def check_shapes_agree(samples: tf.Tensor, segments_per_sample: int, replicated: bool,
                       extra: tf.Tensor | None = None) -> tf.Tensor:
    """Allgathers every rank's (samples, segments per sample[, *extra]) and makes every
    rank raise the same clear error if the ranks' inputs are not slices of one global
    batch (sizes differing by more than one sample; any difference when the ids are
    replicated) or disagree on the number of fields. Returns the int32 [size, 2 (+ len
    extra)] table; `extra` (int32 values, e.g. a block size) rides along at 4 bytes
    each per peer."""
    row = tf.cast(tf.stack([samples, segments_per_sample]), tf.int32)
    if extra is not None:
        row = tf.concat([row, tf.cast(extra, tf.int32)], 0)
    shapes = comm.allgather(row[None])
    spread = tf.reduce_max(shapes[:, 0]) - tf.reduce_min(shapes[:, 0])
    tf.debugging.assert_less_equal(
        spread, 0 if replicated else 1,
        message="DES layers: the ranks hold different batch sizes (samples per rank "
                "printed below); every rank must read its slice of the same global batch, "
                "e.g. through DESStrategy.distribute_dataset",
        summarize=64)
    tf.debugging.assert_equal(
        shapes[:, 1], shapes[0, 1],
        message="DES layers: the ranks feed different numbers of fields to the same layer "
                "(fields per rank printed below)",
        summarize=64)
    return shapes


def local_entries(ids: tf.RaggedTensor, weights: tf.RaggedTensor | None,
                  serving: bool = False) -> OwnedEntries:
    """Every id occurrence of this process's segments, with no collective (one process,
    the replicated plan, or serving: the table holds every row). When `serving`, core
    TensorFlow ops only, as the serving export traces it and TF Serving has no des-tf
    ops; otherwise the row ids come from DesRowIds, a fraction of value_rowids' cost."""
    values = ids.values
    entry_weights = (tf.ones_like(values, tf.float32) if weights is None
                     else tf.cast(weights.values, tf.float32))
    num_segments = ids.nrows()
    segment_ids = ids.value_rowids() if serving else row_ids(ids.row_lengths())
    return OwnedEntries(values, segment_ids, entry_weights, num_segments,
                        tf.cast(num_segments, tf.int32)[None])

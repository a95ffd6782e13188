"""The numbered lines of text files, all of them or one part of a train / eval split, as
tf.data chunks of (file index, line number from 1, line).

Plain files are read by des-tf's DesReadLines, thousands of lines per call, which also
drops the other part's lines before they become strings; gzip files through
tf.data.TextLineDataset, split by the same hash in TensorFlow ops. One tf.data element
per line, or a per-line map or filter, costs more CPU than parsing a Criteo line, and
with N ranks every rank reads every line of the global batch.

A line is in the eval part when the fingerprint of "<file index>:<line number>" modulo
SPLIT_BUCKETS is below the eval fraction of them, so both parts are fixed by the files
alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from des_tf import ops_library

SPLIT_BUCKETS = 1_000_000
# Lines per chunk, about: a multiple of the batch size asked for.
CHUNK_LINES = 4096


def numbered_lines(paths: Sequence[str], split: tuple[str, float] | None,
                   batch_size: int) -> tf.data.Dataset:
    """Chunks of (file index, line number, line) of every file in order; `split`: None
    (every line) or (part "train" | "eval", eval fraction). A plain file's chunks hold a
    multiple of `batch_size` lines (but its last), so batches rebatched out of them are
    slices, not copies."""
    chunk_lines = batch_size * max(1, CHUNK_LINES // batch_size)
    records = None
    for index, path in enumerate(paths):
        lines = (_gzip_lines(index, path, split) if path.endswith(".gz")
                 else _plain_lines(index, path, split, chunk_lines))
        records = lines if records is None else records.concatenate(lines)
    return records


def _eval_buckets(fraction: float) -> int:
    return int(fraction * SPLIT_BUCKETS)


def _plain_lines(index: int, path: str, split: tuple[str, float] | None, chunk_lines: int
                 ) -> tf.data.Dataset:
    """DesReadLines over one uncompressed file, `chunk_lines` lines kept per call."""
    part, fraction = split or ("all", 0.0)
    read_lines = ops_library.load().des_read_lines

    def read(position, _):
        offset, line = position
        lines, numbers, next_offset, next_line = read_lines(
            path, offset, line, max_lines=chunk_lines, file_index=index, part=part,
            split_buckets=SPLIT_BUCKETS, eval_buckets=_eval_buckets(fraction))
        return (next_offset, next_line), (numbers, lines, next_line > line)

    start = (tf.constant(0, tf.int64), tf.constant(1, tf.int64))
    return (tf.data.Dataset.from_tensors(0).repeat().scan(start, read)
            .take_while(lambda numbers, lines, read_any: read_any)
            .map(lambda numbers, lines, read_any: (
                tf.fill(tf.shape(numbers), tf.constant(index, tf.int64)), numbers, lines)))


def _gzip_lines(index: int, path: str, split: tuple[str, float] | None) -> tf.data.Dataset:
    """TextLineDataset over one gzip file, numbered and split a chunk at a time."""
    def numbered(chunk, lines):
        count = tf.shape(lines, out_type=tf.int64)[0]
        numbers = chunk * CHUNK_LINES + 1 + tf.range(count)
        files = tf.fill([count], tf.constant(index, tf.int64))
        if split is None:
            return files, numbers, lines
        part, fraction = split
        key = tf.strings.join([tf.strings.as_string(files), tf.strings.as_string(numbers)], ":")
        is_eval = tf.strings.to_hash_bucket_fast(key, SPLIT_BUCKETS) < _eval_buckets(fraction)
        keep = is_eval == (part == "eval")
        return tuple(tf.boolean_mask(t, keep) for t in (files, numbers, lines))

    return (tf.data.TextLineDataset(path, compression_type="GZIP").batch(CHUNK_LINES)
            .enumerate().map(numbered))

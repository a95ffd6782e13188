"""Bookkeeping of the lines a reader skipped: counts by reason and the first such line.

Each line is counted once however often it is read (every epoch, and the look-ahead
iterators Keras and tf.data prefetching create): a batch only counts the lines past
a high-water mark of line positions, updated atomically in a CriticalSection. Batches
must therefore be recorded in file order (a sequential map after the parsing).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

REASONS = ("wrong column count", "label not 0 or 1", "non-numeric integer", "bad hex id",
           "bad id list")
# A line's position: file index (19 bits) | line number (40 bits); with the reason
# below it (4 bits), one int64 orders bad lines by position.
LINE_BITS = 40
_REASON_BITS = 4
_NONE = 2**63 - 1


def line_positions(file_index: tf.Tensor, line_number: tf.Tensor) -> tf.Tensor:
    """int64 positions that order lines across the files of a reader."""
    return tf.bitwise.bitwise_or(tf.bitwise.left_shift(file_index, LINE_BITS), line_number)


class MalformedLines:
    """Lines read, malformed lines skipped (by reason, and the first one), id lists cut.

    The state is tf.Variables updated inside the input pipeline: create the reader
    outside a strategy scope. `report()` reads them; `reset()` starts over.
    """

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)
        with tf.init_scope():
            self._section = tf.CriticalSection()
            self._counts = tf.Variable(tf.zeros([len(REASONS)], tf.int64), trainable=False)
            self._lines = tf.Variable(tf.zeros([], tf.int64), trainable=False)
            self._truncated = tf.Variable(tf.zeros([], tf.int64), trainable=False)
            self._first = tf.Variable(tf.constant(_NONE, tf.int64), trainable=False)
            self._high_water = tf.Variable(tf.constant(-1, tf.int64), trainable=False)

    def record(self, reasons: tf.Tensor, too_long: tf.Tensor, positions: tf.Tensor
               ) -> tf.Tensor:
        """Adds one batch of lines: reasons int32 [n] (index into REASONS, -1 = well
        formed), too_long bool [n] (an id list will be cut), positions int64 [n]."""
        def update():
            fresh = positions > self._high_water
            bad = fresh & (reasons >= 0)
            codes = tf.bitwise.bitwise_or(tf.bitwise.left_shift(positions, _REASON_BITS),
                                          tf.cast(reasons, tf.int64))
            counts = tf.math.bincount(tf.boolean_mask(reasons, bad), minlength=len(REASONS),
                                      maxlength=len(REASONS), dtype=tf.int64)
            updates = [
                self._lines.assign_add(tf.reduce_sum(tf.cast(fresh, tf.int64))),
                self._counts.assign_add(counts),
                self._truncated.assign_add(tf.reduce_sum(tf.cast(fresh & too_long, tf.int64))),
                self._first.assign(tf.minimum(self._first,
                                              tf.reduce_min(tf.where(bad, codes, _NONE)))),
            ]
            with tf.control_dependencies(updates):
                return self._high_water.assign(
                    tf.maximum(self._high_water, tf.reduce_max(tf.concat([positions, [-1]], 0))))
        return self._section.execute(update)

    def reset(self) -> None:
        for variable in (self._counts, self._lines, self._truncated):
            variable.assign(tf.zeros_like(variable))
        self._first.assign(_NONE)
        self._high_water.assign(-1)

    def report(self) -> dict:
        """{'lines', 'skipped', 'by_reason', 'first' (file, line, reason) or None,
        'truncated_id_lists'}: distinct lines read since the last reset."""
        counts = self._counts.numpy().tolist()
        first = None
        code = int(self._first.numpy())
        if code != _NONE:
            position = code >> _REASON_BITS
            first = (self.paths[position >> LINE_BITS], position & ((1 << LINE_BITS) - 1),
                     REASONS[code & ((1 << _REASON_BITS) - 1)])
        return {"lines": int(self._lines.numpy()), "skipped": sum(counts),
                "by_reason": {r: c for r, c in zip(REASONS, counts) if c},
                "first": first, "truncated_id_lists": int(self._truncated.numpy())}

    def summary(self) -> str | None:
        """A one-line warning text, or None when nothing was skipped or cut."""
        report = self.report()
        parts = []
        if report["skipped"]:
            path, line, reason = report["first"]
            reasons = ", ".join(f"{r}: {c}" for r, c in report["by_reason"].items())
            parts.append(f"skipped {report['skipped']} malformed of {report['lines']} lines "
                         f"({reasons}); first at {path}:{line} ({reason})")
        if report["truncated_id_lists"]:
            parts.append(f"cut {report['truncated_id_lists']} id lists to their max_length")
        return "; ".join(parts) or None

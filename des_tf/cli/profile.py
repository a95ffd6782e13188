"""--profile_steps: where des_tf.train's step time goes, from TensorFlow's profiler.

TensorFlow's profiler records every op of a window of steps; its `framework_op_stats`
tool gives each op's self time. Each op is put in one part of the DES step by its type
and name scope (PARTS), and the parts' self times are reported in ms per step, beside the
step's wall time. Horovod's collectives are asynchronous ops, which the op statistics do
not time: their transfers, the wait for the other ranks and for Horovod's negotiation
cycle, and the framework's own overhead make up `REST`, the wall time not covered by the
step's ops. Self times are summed over threads: where the step's ops run in parallel,
REST is an underestimate and can be negative. The input pipeline runs on other threads,
beside the step (not subtracted), but on the same cores.
"""

from __future__ import annotations

import glob
import json
import re
import time

import keras
import tensorflow as tf
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

# The parts of a step, in report order.
INPUT = "input pipeline (read, parse; beside the step)"
PARTS = (INPUT, "DES layers: stacking, id exchange, masks", "table lookup",
         "partial sums forward", "partial sums backward", "row-gradient apply",
         "dense model forward + backward", "dense optimizer", "metrics", "other")
REST = "wall time minus the step's ops: collectives, waiting, framework"
_BY_TYPE = {"DesEmbeddingTableLookup": "table lookup", "DesEmbeddingTableFind": "table lookup",
            "DesPartialSums": "partial sums forward",
            "DesPartialSumsGrad": "partial sums backward",
            "DesEmbeddingTableApplyGradients": "row-gradient apply",
            "DesEmbeddingTableEvict": "row-gradient apply"}
_STEP_FUNCTION = "StatefulPartitionedCall"  # Keras' traced step; the rest is tf.data


def part_of(op_type: str, op_name: str, des_scopes: re.Pattern) -> str | None:
    """The part of the step an op belongs to (None: the profiler's IDLE pseudo-op)."""
    if op_type == "IDLE":
        return None
    if op_type in _BY_TYPE:
        return _BY_TYPE[op_type]
    if op_type == "Dataset" or not op_name.startswith(_STEP_FUNCTION):
        return INPUT
    if des_scopes.search(op_name):
        return "DES layers: stacking, id exchange, masks"
    if re.search(r"/(adam|sgd|adagrad|rmsprop|optimizer)\w*/", op_name, re.IGNORECASE):
        return "dense optimizer"
    if re.search(r"/(compile_metrics|auc|loss_tracker|mean)\w*/", op_name):
        return "metrics"
    if "gradient_tape/" in op_name or op_name.count("/") >= 2:
        return "dense model forward + backward"
    return "other"


def op_self_times(logdir: str) -> list[tuple[str, str, float]]:
    """(type, name, total self time in us) of every op in the newest profile in `logdir`."""
    paths = sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))
    if not paths:
        raise RuntimeError(f"no profile was written to {logdir}")
    data, ok = profiler_plugin.xspace_to_tools_data(paths[-1:], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"TensorFlow's profiler could not read {paths[-1]}: {data[:200]}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, (cell.get("v") for cell in row["c"]))) for row in table["rows"]]
    return [(row["type"], row["operation"], float(row["total_self_time"])) for row in rows]


class StepProfile(keras.callbacks.Callback):
    """Profiles `steps` training steps from the `first`-th (0-based, of this `fit`) into
    `logdir`; then `parts` holds {part: ms of self time per step} and `wall_ms` the
    window's wall time per step."""

    def __init__(self, first: int, steps: int, logdir: str, des_layer_names: list[str]):
        super().__init__()
        self.first, self.last, self.logdir = first, first + steps - 1, logdir
        names = "|".join(re.escape(name) for name in des_layer_names) or "(?!)"
        self._des_scopes = re.compile(rf"/({names})(_\d+)?/")
        self.parts: dict[str, float] = {}
        self.wall_ms = float("nan")
        self._started = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.first:
            tf.profiler.experimental.start(self.logdir)
            self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch != self.last:
            return
        tf.profiler.experimental.stop()
        steps = self.last - self.first + 1
        self.wall_ms = (time.perf_counter() - self._started) * 1000 / steps
        totals = dict.fromkeys(PARTS, 0.0)
        for op_type, op_name, self_us in op_self_times(self.logdir):
            part = part_of(op_type, op_name, self._des_scopes)
            if part is not None:
                totals[part] += self_us / 1000 / steps
        in_step = sum(ms for part, ms in totals.items() if part != INPUT)
        self.parts = {part: round(ms, 2) for part, ms in totals.items()}
        self.parts[REST] = round(self.wall_ms - in_step, 2)


def format_profile(per_rank: list[dict], wall_ms: list[float]) -> str:
    """A markdown table: one row per part, one column per rank (ms per step)."""
    ranks = range(len(per_rank))
    lines = ["| part of the step (op self time, ms/step) | "
             + " | ".join(f"rank {r}" for r in ranks) + " |",
             "| --- |" + " ---: |" * len(per_rank)]
    for part in (*PARTS, REST):
        lines.append(f"| {part} | " + " | ".join(f"{p[part]:.1f}" for p in per_rank) + " |")
    lines.append("| **step wall time** | " + " | ".join(f"{w:.1f}" for w in wall_ms) + " |")
    return "\n".join(lines)

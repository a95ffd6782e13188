"""plan="auto": each DES layer picks its execution mode ("des", "alltoall", "replicated"
or "rows") from the cost model (des_tf.comm.cost.choose_plan) and the statistics of
real id batches.

When the decision is taken. The plan changes the layer's graph, so it must be fixed
before the first training step is traced, and it needs real ids, which a traced
function never sees. Three entry points, all ending in `decide`:

1. `plan_tables(model, data)` (des_tf.layers.model_planning): explicit. Runs the
   model eagerly on `batches` batches of `data` with every DES layer in *recording*
   mode: each unplanned auto layer counts its ids (per field: occurrences and distinct
   ids per sample; distinct ids of the batch) and returns zeros of its output's shape,
   touching no table and running no collective; then every recorded layer decides, in
   call order.
2. `des_tf.predict_global`: plans from the first batch of its data (`plan_before_running`).
3. Lazily: an unplanned auto layer called eagerly with concrete ids (e.g.
   `model(batch)` to build it) decides from that batch, then runs. Traced without a
   plan (Keras `fit` / `evaluate` / `predict` or a `tf.function` before any of the
   above), it raises an error naming `plan_tables`: call it before `fit`.

Agreement. `decide` sums every rank's integer counts with one allreduce, so every rank
evaluates the cost model on the same numbers (the global means: ids per sample per
field, distinct ids per rank's batch / occurrences, B = global samples / N) and makes
the same choice, which is then checked across ranks. No row exists before the
decision (recording and deciding touch no table), so nothing migrates. The choice is
printed once, on rank 0, and kept on the layer: `layer.plan_in_effect` (the mode in
effect), `layer.plan_decision` (PlanDecision), `plan_report(model)`.

Replication is considered only for a layer built with `vocabulary_size` (rows over
all ranks) whose full table (`vocabulary_size * dim * 4` bytes) fits
`replicated_max_bytes` (REPLICATED_MAX_BYTES unless plan_tables says otherwise), and
never with a `row_budget`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Collection

import numpy as np
import tensorflow as tf

from des_tf import comm
from des_tf.comm import cost, wire
from des_tf.layers import plans
from des_tf.layers.input_distribution import serves

REPLICATED_MAX_BYTES = 64 * 2**20
LOG_PREFIX = "des_tf plan=auto:"


@dataclasses.dataclass
class IdCounts:
    """One rank's integer id statistics of one layer (summable over batches and ranks).

    samples: samples counted; occurrences / distinct: per field, id occurrences and
    distinct ids within each sample, summed over samples; unique: distinct ids of each
    counted batch (all fields together), summed over batches; weighted: batches with
    per-id weights.
    """

    samples: int
    occurrences: np.ndarray
    distinct: np.ndarray
    unique: int
    weighted: int

    def __add__(self, other: "IdCounts") -> "IdCounts":
        if len(self.occurrences) != len(other.occurrences):
            raise ValueError(f"a DES layer was called with {len(self.occurrences)} and "
                             f"{len(other.occurrences)} fields")
        return IdCounts(self.samples + other.samples, self.occurrences + other.occurrences,
                        self.distinct + other.distinct, self.unique + other.unique,
                        self.weighted + other.weighted)

    def vector(self) -> np.ndarray:
        return np.concatenate([[self.samples, self.unique, self.weighted], self.occurrences,
                               self.distinct]).astype(np.int64)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "IdCounts":
        fields = (len(v) - 3) // 2
        return cls(int(v[0]), v[3:3 + fields], v[3 + fields:], int(v[1]), int(v[2]))


def count_ids(ids: tf.RaggedTensor, weighted: bool) -> IdCounts:
    """IdCounts of one batch: `ids` ragged [samples, fields, None] (eager)."""
    samples = int(ids.nrows())
    segments = ids.values  # one row per (sample, field), sample-major
    fields = int(segments.nrows()) // samples if samples else int(ids.shape[1] or 0)
    lengths = segments.row_lengths().numpy().reshape(samples, fields)
    values = segments.values.numpy()
    rows = segments.value_rowids().numpy()
    pairs = np.unique(np.stack([rows, values]), axis=1) if values.size else np.zeros([2, 0])
    distinct = np.bincount(pairs[0].astype(np.int64), minlength=samples * fields)
    return IdCounts(samples, lengths.sum(0).astype(np.int64),
                    distinct.reshape(samples, fields).sum(0).astype(np.int64),
                    int(np.unique(values).size), int(weighted))


@dataclasses.dataclass(frozen=True)
class PlanDecision:
    """What an auto layer decided, and from what: the cost model's operator (global mean
    statistics), B, N, the input mode, whether the chosen plan reuses the id exchange or
    key request of an earlier layer on the same ids (cost.shares_ids), and choose_plan's
    answer."""

    choice: cost.PlanChoice
    operator: cost.Operator
    batch_per_rank: int
    ranks: int
    input_mode: str
    ids_shared: bool = False

    @property
    def plan(self) -> str:
        return self.choice.plan

    def describe(self) -> str:
        op = self.operator
        ids = ", ".join(f"{f.ids_per_sample:.3g}" for f in op.fields)
        return (f"{op.name}: {len(op.fields)} field(s) with [{ids}] ids per sample, unique "
                f"ratio {op.unique_ratio:.3f}, dim {op.dim}, B {self.batch_per_rank}, N "
                f"{self.ranks}, input {self.input_mode}"
                f"{' (ids shared)' if self.ids_shared else ''} -> {self.choice.describe()}")


def decide(layer, counts: IdCounts, *, replicated_max_bytes: float = REPLICATED_MAX_BYTES,
           ids_from_plans: Collection[str] = (), verbose: bool = True) -> PlanDecision:
    """Fixes `layer.plan_in_effect` from this rank's `counts` summed over all ranks (every
    rank must call it, in the same order of layers); `ids_from_plans`: the plans of the
    earlier layers whose id handling it could reuse (_Recorder.ids_from_plans).
    Returns the decision."""
    strategy = layer.strategy
    n = strategy.size
    vector = counts.vector()
    total = (IdCounts.from_vector(comm.allreduce(tf.constant(vector)).numpy()) if n > 1
             else counts)
    samples = max(total.samples, 1)
    fields = tuple(cost.Field(float(o) / samples, float(d) / samples)
                   for o, d in zip(total.occurrences, total.distinct))
    occurrences = int(total.occurrences.sum())
    operator = cost.Operator(
        layer.cost_kind, fields, layer.dim, total.unique / occurrences if occurrences else 1.0,
        layer.vocabulary_size, weighted=total.weighted > 0, name=layer.name)
    ruled_out = [] if layer.row_budget is None else [
        name for name, plan in plans.PLANS.items() if not plan.supports_row_budget]
    batch = max(1, round(total.samples / n))
    choice = cost.choose_plan(operator, ranks=n, batch_per_rank=batch,
                              input_mode=strategy.input_mode,
                              plans=[name for name in plans.PLANS if name not in ruled_out],
                              replicated_max_bytes=replicated_max_bytes,
                              conventions=cost.Conventions(
                                  wire_float_bytes=wire.value_bytes(strategy.comm_dtype),
                                  round_bytes=comm.round_bytes()),
                              ids_from_plans=ids_from_plans)
    if ruled_out:
        choice = dataclasses.replace(
            choice, bytes_per_step={**choice.bytes_per_step,
                                    **dict.fromkeys(ruled_out, float("inf"))},
            excluded={**choice.excluded, **dict.fromkeys(ruled_out, "row_budget is set")})
    comm.assert_same_config({"layer": layer.name, "plan": choice.plan},
                            f"plan='auto' plan of DES layer {layer.name!r}")
    decision = PlanDecision(choice, operator, batch, n, strategy.input_mode,
                            any(cost.shares_ids(choice.plan, p) for p in ids_from_plans))
    layer._set_plan(decision)
    if verbose and strategy.rank == 0:
        print(f"{LOG_PREFIX} {decision.describe()}", flush=True)
    return decision


# ----------------------------------------------------------- recording forward passes

class _Recorder:
    """What plan_tables' forward passes saw: the id counts of each unplanned auto layer,
    and the id (and weight) tensors of every DES layer's first call."""

    def __init__(self):
        self.counts: dict = {}  # unplanned auto layer -> IdCounts, in first-call order
        self.sources: dict = {}  # DES layer -> its input tensors, in first-call order

    def add(self, layer, source: tuple, counts: IdCounts | None) -> None:
        """Records a call of `layer` on `source`, and its `counts` if it is undecided."""
        self.sources.setdefault(layer, source)
        if counts is not None:
            self.counts[layer] = (self.counts[layer] + counts if layer in self.counts
                                  else counts)

    def ids_from_plans(self, layer) -> tuple[str, ...]:
        """The plans in effect of the layers called before `layer` on the very same
        tensors whose entries would serve it, as in a traced step
        (input_distribution.shared_entries): where cost.shares_ids allows, `layer`
        reuses their id exchange or key request. Embedding kinds read segments per
        field, the others per sample."""
        plans = []
        for earlier, earlier_source in self.sources.items():
            if earlier is layer:
                break
            if (earlier.plan_in_effect is not None
                    and serves(earlier_source, earlier.cost_kind == "embedding",
                               self.sources[layer], layer.cost_kind == "embedding")):
                plans.append(earlier.plan_in_effect)
        return tuple(plans)


_RECORDING: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar(
    "des_auto_plan_recording", default=None)


def recorder() -> _Recorder | None:
    """The active recorder while plan_tables runs the model (DES layers then count ids
    and return zeros), else None."""
    return _RECORDING.get()


@contextlib.contextmanager
def recording():
    """Within it, DES layers record their ids (see `recorder`)."""
    token = _RECORDING.set(_Recorder())
    try:
        yield _RECORDING.get()
    finally:
        _RECORDING.reset(token)

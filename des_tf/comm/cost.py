"""Communication cost model: bytes per training step and rank, per plan, kind and part.

docs/design.md sections 1-3 in numbers. For each operator of a model (a pooled embedding with
one output per field, the LR sum, the FM sums) and each way to execute it, the model
gives the bytes one rank sends and receives per synchronous step, split by

- collective *kind*: the `des_tf.comm.accounting` kinds ("allgather", "alltoall",
  "allreduce", "reduce_scatter", "broadcast") counted with the same conventions as the
  counters, plus "ps_pull" / "ps_push" for a parameter server;
- *part*: "ids" (ids, their lengths / segment indices / weights, the batch-shape check),
  "forward" (partial results, or pulled rows under PS), "backward" (gradients of the
  partials, or row gradients), "dense" (dense weights: gradient allreduce, or PS pull +
  push) and "metrics" (the metric states summed over ranks where read, des_tf.strategy).

Plans, per operator (PLANS):

  "des"        dense DES partials (DESIGN section 3): ids reach their owners in the
               strategy's input mode (INPUT_MODES; wire format below), owners
               reduce-scatter partials of
               all N*B segments, backward allgathers the gradients of the summed
               partials. Partials grow with N: each rank sends (N-1)*B*S*w floats.
  "alltoall"   sparse aggregation: ids reach owners as for "des"; each owner sends, to
               the rank holding the sample, only the (segment) partials it has at least
               one id of, each with an index; the gradients of those partials come back
               the same way. A segment with l distinct ids is non-empty on a given other
               rank with probability 1 - (1 - 1/N)^l, so this stops growing once N
               exceeds the ids per segment (one-hot: the alltoall of pooled embeddings).
  "replicated" the table is copied on every rank: lookups are local, each rank
               allgathers its U unique (key, row gradient) pairs (sparse gradient), or
               with Conventions.replicated_gradient="allreduce" ring-allreduces the
               dense gradient of all `vocabulary` rows.
  "rows"       each rank asks the owners for the rows of its U distinct ids (an
               alltoall of keys), receives them (an alltoall of rows), pools its own
               segments locally, and sends each distinct id's gradient back to its owner.
               No occurrence moves: U rows each way whatever the ids per sample.
  "ps"         parameter server: each worker pulls the U unique rows its batch touches
               (sends U keys, receives U rows; optimizer slots stay on the servers) and
               pushes their gradients (keys + rows), and pulls + pushes every dense
               weight each step. Metrics are not aggregated (asynchronous workers).

Convention for "bytes per step": what crosses one rank's network interface in one step,
**sent + received** (`Traffic.total`); `sent` and `received` are kept apart, per kind,
so they compare one-to-one with `des_tf.comm.counters()`. For a PS worker this is its
traffic with the servers (servers are other machines). Collectives are counted as the
counters count them: allgather sends its block to N-1 peers, ring allreduce sends and
receives 2 (N-1)/N of the tensor, reduce-scatter / alltoall send the blocks addressed
to other ranks. Hashing spreads ids uniformly over owners, so a fraction (N-1)/N of the
id occurrences (and of a rank's distinct ids) leaves its rank in alltoall input mode.
All ranks are assumed to hold B samples.

Id wire format (des_tf.layers.input_distribution.exchange_ids), per rank and step:
  allgather  a check row (samples, fields, ids sent: 3 int32); the rank's U distinct ids
             (int64) + an int32 inverse index per occurrence when that is smaller
             (2 U < E), else its E raw ids; an int32 id count per segment; weights.
  alltoall   a check row (2 int32); to each owner, the distinct ids it owns (int64) and
             per occurrence an int32 index into them + its int32 global segment index.
  replicated a check row (2 int32).
Layers called on the same id tensors in one traced step share the id handling of the
first one (Operator.ids_from, shares_ids): DeepFM's / Wide&Deep's SparseLinear reuses the
ShardedEmbedding's per-field exchange, so the linear table's ids cost nothing; under
"rows" both it reuses the embedding's key request (the check and the keys).

Symbols: B samples per rank, N ranks, S segments per sample (fields for an embedding,
1 for LR / FM), w partial floats per segment (dim; 1 for LR; dim + 1 for FM), E = B *
sum of mean ids per sample over the fields (id occurrences per rank and step), U =
unique_ratio * E (distinct ids in one rank's batch), P dense parameters, M metric
floats, kb key bytes, fb float bytes.

    des      ids:  allgather (N-1)(12 + min(E kb, U kb + E 4) + B S 4 [+ E fb weights])
                   alltoall   8(N-1) + (N-1)/N (U kb + E (4 + 4 [+ fb]))
                   replicated 8(N-1);  0 when shared with an earlier operator (ids_from)
             fwd:  reduce_scatter (N-1) B S w fb;  bwd: allgather (N-1) B S w fb
    alltoall ids as des; fwd and bwd: alltoall (N-1) B S pi (w fb + index bytes),
             pi = mean over segments of 1 - (1 - 1/N)^distinct ids of the segment
    replicated   ids: 8(N-1) (the check);  bwd: allgather (N-1) U (kb + row fb)
             (or allreduce 2(N-1)/N V row fb)
    rows     ids: 8(N-1) (the check) + alltoall (N-1)/N U kb, 0 when shared with an
             earlier "rows" operator;  fwd: alltoall (N-1)/N U row fb;  bwd: alltoall
             (N-1)/N U row fb  (row = dim floats, also for FM)
    ps       ids: push U kb (pull request) + U kb (push);  fwd: receive U row fb;
             bwd: send U row fb;  dense: send P fb, receive P fb
    dense (des, alltoall, replicated): allreduce 2(N-1)/N P fb, both directions
    metrics: allreduce 2(N-1)/N M fb, both directions (0 under ps)

`choose_plan` gives the cheapest plan for one table from its measured statistics
(`measure_fields` computes them from a batch); the `plan="auto"` planner calls it.
`model_operators` builds the operators of des_tf.models' LR, Wide&Deep and DeepFM.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence


class InputMode(enum.StrEnum):
    """How ids reach their owners (DESStrategy's `input_mode`)."""

    ALLGATHER = "allgather_ids"
    ALLTOALL = "alltoall_ids"
    REPLICATED = "replicated_ids"


class ExecutionPlan(enum.StrEnum):
    """How a DES layer computes and sums its partials (the layer's `comm`)."""

    DES = "des"
    ALLTOALL = "alltoall"
    REPLICATED = "replicated"
    ROWS = "rows"


PS = "ps"  # the parameter-server baseline, costed like a plan
# The input modes' former names, which shared "alltoall" and "replicated" with the plans.
DEPRECATED_INPUT_MODES = {"allgather": InputMode.ALLGATHER, "alltoall": InputMode.ALLTOALL,
                          "replicated": InputMode.REPLICATED}
# The names as plain strings (for messages and flag choices).
EXECUTION_PLANS = tuple(plan.value for plan in ExecutionPlan)
PLANS = (*EXECUTION_PLANS, PS)
INPUT_MODES = tuple(mode.value for mode in InputMode)


# DESStrategy(comm_dtype=...): the wire formats of the floats ranks exchange (partials,
# their gradients, dense gradients) and the bytes of one value; des_tf.comm.wire encodes.
COMM_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
COMM_DTYPES = tuple(COMM_DTYPE_BYTES)
EXACT_COMM_DTYPE = "float32"


def parse_input_mode(name: str) -> InputMode:
    """The InputMode called `name`; a former name is accepted with a DeprecationWarning."""
    if name in DEPRECATED_INPUT_MODES:
        warnings.warn(f"input mode {name!r} is deprecated: call it "
                      f"{DEPRECATED_INPUT_MODES[name].value!r}", DeprecationWarning, stacklevel=3)
        return DEPRECATED_INPUT_MODES[name]
    if name not in INPUT_MODES:
        raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {name!r}")
    return InputMode(name)


# The plans whose ids travel through an id exchange (which layers may share).
EXCHANGING_PLANS = (ExecutionPlan.DES, ExecutionPlan.ALLTOALL)
OPERATOR_KINDS = ("embedding", "linear", "fm")
PARTS = ("ids", "forward", "backward", "dense", "metrics")
KINDS = ("allgather", "alltoall", "allreduce", "reduce_scatter", "broadcast", "ps_pull",
         "ps_push")
SHAPE_CHECK_BYTES = 8  # each id exchange allgathers (samples, fields) as 2 int32 ...
IDS_SENT_BYTES = 4  # ... plus, in allgather input mode, the count of ids it sends (int32)


@dataclasses.dataclass(frozen=True)
class Field:
    """One id field as seen in the batches.

    Args:
      ids_per_sample: mean id occurrences per sample (1 for one-hot).
      distinct_per_sample: mean distinct ids per sample (duplicates within a sample sent
        once by sparse aggregation); defaults to `ids_per_sample`.
    """

    ids_per_sample: float = 1.0
    distinct_per_sample: float | None = None

    def __post_init__(self):
        if self.ids_per_sample < 0:
            raise ValueError(f"ids_per_sample must be >= 0, got {self.ids_per_sample}")
        if self.distinct_per_sample is not None and not (
                0 <= self.distinct_per_sample <= self.ids_per_sample + 1e-9):
            raise ValueError(f"distinct_per_sample must lie in [0, ids_per_sample="
                             f"{self.ids_per_sample}], got {self.distinct_per_sample}")

    @property
    def distinct(self) -> float:
        return self.ids_per_sample if self.distinct_per_sample is None else \
            self.distinct_per_sample


@dataclasses.dataclass(frozen=True)
class Operator:
    """One weight-rich DES operator over one table (one DES layer).

    Args:
      kind: "embedding" (one pooled output of `dim` floats per field), "linear" (LR
        sum: 1 float per sample) or "fm" (FM sums: dim + 1 floats per sample).
      fields: the fields it reads (all share its table).
      dim: row width (1 for "linear").
      unique_ratio: distinct ids / id occurrences in one rank's batch of B samples, over
        all its fields (what a PS worker pulls, what a replicated table gathers).
      vocabulary: rows of the table (needed by replicated with a dense gradient, and by
        choose_plan's memory limit for replication).
      weighted: per-id weights travel with the ids.
      name: label used in reports.
      ids_from: the name of an earlier operator (called first, on the same id and weight
        tensors, segments per (sample, field) or per sample alike) whose id exchange or
        key request this one reuses when their plans allow it (shares_ids).
    """

    kind: str
    fields: tuple[Field, ...]
    dim: int = 1
    unique_ratio: float = 1.0
    vocabulary: int | None = None
    weighted: bool = False
    name: str = ""
    ids_from: str = ""

    def __post_init__(self):
        if self.kind not in OPERATOR_KINDS:
            raise ValueError(f"kind must be one of {OPERATOR_KINDS}, got {self.kind!r}")
        if not self.fields:
            raise ValueError("an operator needs at least one field")
        if self.dim < 1 or (self.kind == "linear" and self.dim != 1):
            raise ValueError(f"dim must be >= 1 (1 for 'linear'), got {self.dim}")
        if not 0.0 <= self.unique_ratio <= 1.0:
            raise ValueError(f"unique_ratio must lie in [0, 1], got {self.unique_ratio}")

    @property
    def segments_per_sample(self) -> int:
        return len(self.fields) if self.kind == "embedding" else 1

    @property
    def width(self) -> int:
        """Partial floats per segment."""
        return self.dim + 1 if self.kind == "fm" else self.dim

    @property
    def ids_per_sample(self) -> float:
        return sum(f.ids_per_sample for f in self.fields)

    def segment_distinct(self) -> list[float]:
        """Mean distinct ids of each segment kind of a sample (per field, or all fields
        merged for LR / FM: fields are assumed not to share ids)."""
        if self.kind == "embedding":
            return [f.distinct for f in self.fields]
        return [sum(f.distinct for f in self.fields)]


@dataclasses.dataclass(frozen=True)
class Conventions:
    """Byte sizes and implementation choices the counts depend on.

    Args:
      key_bytes, float_bytes: an id (int64) and a float (float32): table rows, id
        weights, metrics, everything the parameter server moves.
      wire_float_bytes: a float of a DES partial, its gradient or a dense gradient between
        ranks: 4, or 2 in a 16-bit DESStrategy comm_dtype (des_tf.comm.wire).
      length_bytes: a segment's id count in allgather input mode (int32).
      inverse_index_bytes: an occurrence's index into the distinct ids its rank sends
        (int32; in allgather input mode only when 2 U < E, see the module).
      segment_index_bytes: an id's global segment index in alltoall input mode (int32).
      partial_index_bytes: the index sent with each sparse-aggregation partial (int32).
      backward_index_bytes: an index sent with each partial's gradient (0: the receiver
        knows the order of the partials it sent).
      replicated_gradient: "allgather" (sparse: unique keys + row gradients) or
        "allreduce" (the dense gradient of all vocabulary rows).
      ps_keys_on_push: a PS push re-sends the keys with the row gradients.
      share_ids: operators with `ids_from` reuse that operator's id handling (shares_ids).
      round_bytes: what one more dependent collective round of a step costs, in bytes:
        its latency at 1 Gbit/s, by transport (des_tf.comm.runtime.ROUND_BYTES; the
        default is the mesh's, 8 KiB, about 64 us). choose_plan ranks plans by bytes +
        rounds (plan_rounds) * round_bytes, so that at nearly equal bytes the plan with
        fewer rounds wins.
    """

    key_bytes: int = 8
    float_bytes: int = 4
    wire_float_bytes: int = 4
    length_bytes: int = 4
    inverse_index_bytes: int = 4
    segment_index_bytes: int = 4
    partial_index_bytes: int = 4
    backward_index_bytes: int = 0
    replicated_gradient: str = "allgather"
    ps_keys_on_push: bool = True
    share_ids: bool = True
    round_bytes: int = 8 * 1024


@dataclasses.dataclass(frozen=True)
class Config:
    """One model's workload on N ranks.

    Args:
      batch_per_rank: B, samples each rank trains on per step.
      ranks: N.
      operators: the model's DES operators (see model_operators).
      dense_params: P, trainable dense parameters (allreduced each step).
      metric_floats: M, float32 metric state summed over ranks per step, on average: the
        states are summed where read outside the step (Keras' loss mean: 2 floats, + 800
        with an AUC of 200 thresholds, per read), so 0 when only epoch ends read them.
      input_mode: how ids reach their owners under "des" / "alltoall" (INPUT_MODES).
      conventions: byte sizes and implementation choices.
    """

    batch_per_rank: int
    ranks: int
    operators: tuple[Operator, ...]
    dense_params: int = 0
    metric_floats: int = 2
    input_mode: str = InputMode.ALLGATHER
    conventions: Conventions = Conventions()

    def __post_init__(self):
        if self.batch_per_rank < 1 or self.ranks < 1:
            raise ValueError(f"batch_per_rank and ranks must be >= 1, got "
                             f"{self.batch_per_rank}, {self.ranks}")
        object.__setattr__(self, "input_mode", parse_input_mode(self.input_mode))

    def with_(self, **changes) -> "Config":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class Flow:
    """Bytes one rank sends and receives per step for one (operator, part, kind)."""

    operator: str
    part: str
    kind: str
    sent: float
    received: float


@dataclasses.dataclass(frozen=True)
class Traffic:
    """A step's flows for one rank, with totals by kind and by part."""

    flows: tuple[Flow, ...]
    batch_per_rank: int

    @property
    def sent(self) -> float:
        return sum(f.sent for f in self.flows)

    @property
    def received(self) -> float:
        return sum(f.received for f in self.flows)

    @property
    def total(self) -> float:
        """Sent + received: the convention for "bytes per step"."""
        return self.sent + self.received

    @property
    def per_sample(self) -> float:
        """`total` / B."""
        return self.total / self.batch_per_rank

    def by_kind(self, direction: str = "sent") -> dict[str, float]:
        return self._group("kind", direction)

    def by_part(self, direction: str = "total") -> dict[str, float]:
        return self._group("part", direction)

    def by_operator(self, direction: str = "total") -> dict[str, float]:
        return self._group("operator", direction)

    def _group(self, key: str, direction: str) -> dict[str, float]:
        if direction not in ("sent", "received", "total"):
            raise ValueError(f"direction must be sent, received or total, got {direction!r}")
        out: dict[str, float] = {}
        for f in self.flows:
            value = f.sent + f.received if direction == "total" else getattr(f, direction)
            out[getattr(f, key)] = out.get(getattr(f, key), 0.0) + value
        return out

    def __add__(self, other: "Traffic") -> "Traffic":
        return Traffic(self.flows + other.flows, self.batch_per_rank)


def nonempty_probability(distinct_ids: float, ranks: int) -> float:
    """Probability that a given rank owns at least one of `distinct_ids` ids (uniform
    hashing): 1 - (1 - 1/N)^l."""
    return 1.0 - (1.0 - 1.0 / ranks) ** distinct_ids if ranks > 1 else 1.0


def _ids_flows(op: Operator, cfg: Config) -> list[Flow]:
    """Ids to their owners in the configured input mode (des and alltoall plans)."""
    c, n, b = cfg.conventions, cfg.ranks, cfg.batch_per_rank
    peers = n - 1
    name = op.name or op.kind
    check = (SHAPE_CHECK_BYTES + (IDS_SENT_BYTES if cfg.input_mode == InputMode.ALLGATHER else 0)
             ) * peers
    flows = [Flow(name, "ids", "allgather", check, check)]
    entries = b * op.ids_per_sample
    unique = op.unique_ratio * entries
    weight_bytes = c.float_bytes if op.weighted else 0
    if cfg.input_mode == InputMode.ALLGATHER:
        # distinct ids + inverse indices when smaller (2 U < E), else the raw ids
        ids = min(entries * c.key_bytes, unique * c.key_bytes + entries * c.inverse_index_bytes)
        per_rank = (ids + entries * weight_bytes
                    + b * op.segments_per_sample * c.length_bytes)
        flows.append(Flow(name, "ids", "allgather", per_rank * peers, per_rank * peers))
    elif cfg.input_mode == InputMode.ALLTOALL:
        per_entry = c.inverse_index_bytes + c.segment_index_bytes + weight_bytes
        moved = peers / n * (unique * c.key_bytes + entries * per_entry)
        flows.append(Flow(name, "ids", "alltoall", moved, moved))
    return flows


def _des_flows(op: Operator, cfg: Config, name: str) -> list[Flow]:
    """"des": every segment's partials reduce-scattered, their gradients allgathered."""
    partials = ((cfg.ranks - 1) * cfg.batch_per_rank * op.segments_per_sample * op.width
                * cfg.conventions.wire_float_bytes)
    return [Flow(name, "forward", "reduce_scatter", partials, partials),
            Flow(name, "backward", "allgather", partials, partials)]


def _alltoall_flows(op: Operator, cfg: Config, name: str) -> list[Flow]:
    """"alltoall": only non-empty segments' partials (and their gradients), indexed."""
    c, n = cfg.conventions, cfg.ranks
    # (N-1) B segments of other ranks per segment kind, non-empty here with prob pi.
    rows = (n - 1) * cfg.batch_per_rank * sum(nonempty_probability(distinct, n)
                                              for distinct in op.segment_distinct())
    fwd = rows * (op.width * c.wire_float_bytes + c.partial_index_bytes)
    bwd = rows * (op.width * c.wire_float_bytes + c.backward_index_bytes)
    return [Flow(name, "forward", "alltoall", fwd, fwd),
            Flow(name, "backward", "alltoall", bwd, bwd)]


def _replicated_flows(op: Operator, cfg: Config, name: str) -> list[Flow]:
    """"replicated": the batch-shape check, then the sparse gradient allgathered (or a
    dense one allreduced, by convention)."""
    c, n = cfg.conventions, cfg.ranks
    peers, row_bytes = n - 1, op.dim * c.wire_float_bytes
    check = SHAPE_CHECK_BYTES * peers  # the batch-shape check only: no id moves
    flows = [Flow(name, "ids", "allgather", check, check)]
    if c.replicated_gradient == "allreduce":
        if op.vocabulary is None:
            raise ValueError(f"operator {name!r}: a dense replicated gradient needs "
                             "its vocabulary (rows)")
        ring = 2 * peers / n * op.vocabulary * row_bytes
        return flows + [Flow(name, "backward", "allreduce", ring, ring)]
    unique = op.unique_ratio * cfg.batch_per_rank * op.ids_per_sample
    gathered = peers * unique * (c.key_bytes + row_bytes)
    return flows + [Flow(name, "backward", "allgather", gathered, gathered)]


def _rows_flows(op: Operator, cfg: Config, name: str) -> list[Flow]:
    """"rows": the batch-shape check, then each rank's distinct ids to their owners, the
    rows back and the rows' gradients to the owners again (the part owned elsewhere)."""
    c, n = cfg.conventions, cfg.ranks
    check = SHAPE_CHECK_BYTES * (n - 1)
    away = (n - 1) / n * op.unique_ratio * cfg.batch_per_rank * op.ids_per_sample
    rows = away * op.dim * c.wire_float_bytes
    return [Flow(name, "ids", "allgather", check, check),
            Flow(name, "ids", "alltoall", away * c.key_bytes, away * c.key_bytes),
            Flow(name, "forward", "alltoall", rows, rows),
            Flow(name, "backward", "alltoall", rows, rows)]


def _ps_flows(op: Operator, cfg: Config, name: str) -> list[Flow]:
    """The parameter server: keys and rows pulled, row gradients pushed."""
    c = cfg.conventions
    unique = op.unique_ratio * cfg.batch_per_rank * op.ids_per_sample
    row_bytes = op.dim * c.float_bytes
    push_keys = unique * c.key_bytes if c.ps_keys_on_push else 0.0
    return [Flow(name, "ids", "ps_pull", unique * c.key_bytes, 0.0),
            Flow(name, "ids", "ps_push", push_keys, 0.0),
            Flow(name, "forward", "ps_pull", 0.0, unique * row_bytes),
            Flow(name, "backward", "ps_push", unique * row_bytes, 0.0)]


# Each plan's flows besides the id exchange (which the exchanging plans add).
PLAN_FLOWS: dict[str, Callable[[Operator, Config, str], list[Flow]]] = {
    ExecutionPlan.DES: _des_flows, ExecutionPlan.ALLTOALL: _alltoall_flows,
    ExecutionPlan.REPLICATED: _replicated_flows, ExecutionPlan.ROWS: _rows_flows,
    PS: _ps_flows}


# Dependent collective rounds per operator and training step, besides the id round of
# the plans that have one (ID_ROUND_PLANS): forward and backward; the replicated table's
# batch-shape check and gradient allgather.
PLAN_ROUNDS = {ExecutionPlan.DES: 2, ExecutionPlan.ALLTOALL: 2, ExecutionPlan.REPLICATED: 2,
               ExecutionPlan.ROWS: 2, PS: 2}
# Plans with one more round that brings ids to their owners before the forward: the id
# exchange (des, alltoall), the key request (rows); an operator sharing it has none.
ID_ROUND_PLANS = (*EXCHANGING_PLANS, ExecutionPlan.ROWS)


def shares_ids(plan: str, earlier_plan: str | None) -> bool:
    """Whether an operator under `plan` reuses the id handling of an earlier operator
    on the very same ids under `earlier_plan`, as a traced step does: an id exchange
    between "des" / "alltoall" (input_distribution.exchange_fields), a key request
    between "rows" (rows_plan.key_request)."""
    return ((plan in EXCHANGING_PLANS and earlier_plan in EXCHANGING_PLANS)
            or plan == earlier_plan == ExecutionPlan.ROWS)


def plan_rounds(plan: str, ids_shared: bool = False) -> int:
    """Dependent collective rounds per step of an operator under `plan`."""
    return PLAN_ROUNDS[plan] + (plan in ID_ROUND_PLANS and not ids_shared)


def operator_traffic(op: Operator, plan: str, cfg: Config, ids_shared: bool = False
                     ) -> Traffic:
    """Bytes one rank sends / receives per step for `op` executed with `plan`;
    `ids_shared`: it reuses an earlier operator's id exchange or key request
    (shares_ids), so it moves no id bytes of its own."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {PLANS}, got {plan!r}")
    name = op.name or op.kind
    ids = _ids_flows(op, cfg) if plan in EXCHANGING_PLANS else []
    flows = ids + PLAN_FLOWS[plan](op, cfg, name)
    if ids_shared:
        flows = [flow for flow in flows if flow.part != "ids"]
    return Traffic(tuple(flows), cfg.batch_per_rank)


def dense_traffic(cfg: Config, ps: bool) -> Traffic:
    """Dense weights and metrics: ring allreduces, or PS pull + push (no metrics)."""
    c, n = cfg.conventions, cfg.ranks
    if ps:
        dense_bytes = cfg.dense_params * c.float_bytes
        flows = (Flow("dense", "dense", "ps_push", dense_bytes, 0.0),
                 Flow("dense", "dense", "ps_pull", 0.0, dense_bytes))
    else:
        ring = 2 * (n - 1) / n
        dense_bytes = cfg.dense_params * c.wire_float_bytes
        metrics = ring * cfg.metric_floats * c.float_bytes
        flows = (Flow("dense", "dense", "allreduce", ring * dense_bytes, ring * dense_bytes),
                 Flow("metrics", "metrics", "allreduce", metrics, metrics))
    return Traffic(flows, cfg.batch_per_rank)


def step_traffic(cfg: Config, plan: str | Mapping[str, str]) -> Traffic:
    """A whole training step of one rank: every operator under `plan` (one plan for
    all, or {operator name: plan}), plus dense weights and metrics. Under "ps" for all
    operators the dense weights go through the PS too; otherwise they are allreduced."""
    plans = {op.name: plan for op in cfg.operators} if isinstance(plan, str) else dict(plan)
    missing = [op.name for op in cfg.operators if op.name not in plans]
    if missing:
        raise ValueError(f"no plan for operators {missing}")
    traffic = Traffic((), cfg.batch_per_rank)
    for op in cfg.operators:
        traffic += operator_traffic(op, plans[op.name], cfg,
                                    ids_shared=_ids_shared(op, plans, cfg.conventions))
    all_ps = bool(cfg.operators) and all(plans[op.name] == PS for op in cfg.operators)
    return traffic + dense_traffic(cfg, ps=all_ps)


def _ids_shared(op: Operator, plans: Mapping[str, str], conventions: Conventions) -> bool:
    """Whether `op` reuses the id handling of its `ids_from` operator under `plans`."""
    return (conventions.share_ids and bool(op.ids_from)
            and shares_ids(plans.get(op.name), plans.get(op.ids_from)))


@dataclasses.dataclass(frozen=True)
class PlanChoice:
    """choose_plan's answer: the plan, and of each plan considered the modelled bytes per
    step (sent + received; float("inf") where not allowed, with the reason) and
    dependent collective rounds per step, each weighed as `round_bytes`."""

    plan: str
    bytes_per_step: dict[str, float]
    excluded: dict[str, str]
    rounds: dict[str, int]
    round_bytes: int

    def describe(self) -> str:
        costs = ", ".join(f"{p} {v / 1024:.1f} KiB in {self.rounds[p]} rounds"
                          for p, v in self.bytes_per_step.items() if math.isfinite(v))
        out = (f"{self.plan} ({costs} per step; a round weighs "
               f"{self.round_bytes / 1024:.0f} KiB)")
        if self.excluded:
            out += "; excluded: " + ", ".join(f"{p}: {r}" for p, r in self.excluded.items())
        return out


def choose_plan(op: Operator, *, ranks: int, batch_per_rank: int,
                input_mode: str = InputMode.ALLGATHER, plans: Sequence[str] = EXECUTION_PLANS,
                replicated_max_bytes: float = 64 * 2**20,
                conventions: Conventions = Conventions(),
                ids_from_plans: Collection[str] = ()) -> PlanChoice:
    """The cheapest plan for one table: the fewest bytes sent + received per step and
    rank, each dependent collective round counted as `conventions.round_bytes` more;
    `ids_from_plans`: the plans of earlier operators on the very same ids, whose id
    exchange or key request a plan reuses where shares_ids says so.

    `op` carries the table's measured statistics: its fields' ids (and distinct ids) per
    sample, the unique-id ratio of one rank's batch, dim and vocabulary (rows). A table
    is replicated only if its `vocabulary * dim * float_bytes` is known and at most
    `replicated_max_bytes`. Ties go to the earlier plan in `plans`.
    """
    unknown = [p for p in plans if p not in PLANS]
    if unknown:
        raise ValueError(f"unknown plans {unknown}; choose from {PLANS}")
    cfg = Config(batch_per_rank, ranks, (op,), input_mode=input_mode, conventions=conventions)
    costs, excluded, rounds = {}, {}, {}
    for plan in plans:
        shared = any(shares_ids(plan, earlier) for earlier in ids_from_plans)
        rounds[plan] = plan_rounds(plan, shared)
        if plan == ExecutionPlan.REPLICATED:
            if op.vocabulary is None:
                excluded[plan] = "vocabulary unknown"
            elif op.vocabulary * op.dim * conventions.float_bytes > replicated_max_bytes:
                excluded[plan] = (f"{op.vocabulary} rows x {op.dim} floats exceed "
                                  f"{replicated_max_bytes / 2**20:.0f} MiB")
            if plan in excluded:
                costs[plan] = float("inf")
                continue
        costs[plan] = operator_traffic(op, plan, cfg, ids_shared=shared).total
    best = min(plans, key=lambda p: (costs[p] + rounds[p] * conventions.round_bytes,
                                     plans.index(p)))
    return PlanChoice(best, costs, excluded, rounds, conventions.round_bytes)


def auto_plans(cfg: Config, **kwargs) -> dict[str, str]:
    """{operator name: choose_plan's plan} for every operator of `cfg`, in order: an
    operator with `ids_from` is costed knowing the plan given to that operator."""
    plans: dict[str, str] = {}
    for op in cfg.operators:
        earlier = ((plans[op.ids_from],) if cfg.conventions.share_ids and op.ids_from
                   else ())
        plans[op.name] = choose_plan(op, ranks=cfg.ranks, batch_per_rank=cfg.batch_per_rank,
                                     input_mode=cfg.input_mode, conventions=cfg.conventions,
                                     ids_from_plans=earlier, **kwargs).plan
    return plans


def measure_fields(batch: Sequence[Sequence[Sequence[int]]]
                   ) -> tuple[tuple[Field, ...], float]:
    """(fields, unique_ratio) of one table from one rank's batch: `batch[f][s]` holds
    the ids of field f in sample s (e.g. `ragged.to_list()` per field). The unique ratio
    is over all fields together (fields sharing a table share its rows)."""
    fields, every_id = [], []
    for samples in batch:
        lengths = [len(ids) for ids in samples]
        distinct = [len(set(ids)) for ids in samples]
        n = max(len(samples), 1)
        fields.append(Field(sum(lengths) / n, sum(distinct) / n))
        every_id.extend(i for ids in samples for i in ids)
    ratio = len(set(every_id)) / len(every_id) if every_id else 1.0
    return tuple(fields), ratio


# ----------------------------------------------------------- workloads and models


def mlp_params(input_width: int, hidden: Iterable[int], outputs: int = 1) -> int:
    """Weights + biases of Dense layers input_width -> hidden... -> outputs."""
    params, width = 0, input_width
    for units in (*hidden, outputs):
        params += width * units + units
        width = units
    return params


def model_operators(model: str, fields: Sequence[Field], *, dim: int = 16,
                    unique_ratio: float = 1.0, linear_unique_ratio: float | None = None,
                    vocabulary: int | None = None) -> tuple[Operator, ...]:
    """The DES operators of des_tf.models' "lr" (one SparseLinear), "wide_deep" and
    "deepfm" (one ShardedEmbedding over all fields + one SparseLinear; DeepFM's FM term
    is computed locally from the pooled fields), or "fm" (SparseLinear + FMInteraction).
    Each layer has its own table; the layer called second reuses the first one's id
    exchange (ids_from: the models call the embedding, resp. the linear term, first)."""
    fields = tuple(fields)
    linear = Operator("linear", fields, 1, unique_ratio if linear_unique_ratio is None
                      else linear_unique_ratio, vocabulary, name="linear")
    if model == "lr":
        return (linear,)
    if model in ("wide_deep", "deepfm"):
        return (Operator("embedding", fields, dim, unique_ratio, vocabulary,
                         name="embedding"), dataclasses.replace(linear, ids_from="embedding"))
    if model == "fm":
        return (linear, Operator("fm", fields, dim, unique_ratio, vocabulary, name="fm",
                                 ids_from="linear"))
    raise ValueError(f"model must be lr, wide_deep, deepfm or fm, got {model!r}")


def model_dense_params(model: str, num_fields: int, num_dense: int, *, dim: int = 16,
                       hidden: Sequence[int] = (400, 400, 400)) -> int:
    """Trainable dense parameters of des_tf.models' LR / Wide&Deep / DeepFM: the MLP and
    head (Wide&Deep, DeepFM), the dense linear term (LR), SparseLinear's bias and one
    gradient hook scalar per DES layer."""
    if model == "lr":
        return num_dense + 1 + 1
    if model in ("wide_deep", "deepfm"):
        return mlp_params(num_fields * dim + num_dense, hidden) + 1 + 2
    if model == "fm":
        return 1 + 2
    raise ValueError(f"model must be lr, wide_deep, deepfm or fm, got {model!r}")


def zipf_expected_unique(draws: float, vocabulary: int, exponent: float = 1.1) -> float:
    """Expected distinct ranks among `draws` Zipf draws over `vocabulary` ranks, with
    des_tf.data.synthetic's law (P(r) from the continuous power law on [1, V + 1),
    floored): sum_r 1 - (1 - p_r)^draws."""
    import numpy as np

    if draws <= 0:
        return 0.0
    one_minus = 1.0 - exponent
    norm = (vocabulary + 1.0) ** one_minus - 1.0
    total, chunk = 0.0, 1 << 20
    for start in range(0, vocabulary, chunk):
        r = np.arange(start, min(start + chunk, vocabulary), dtype=np.float64)
        p = ((r + 2.0) ** one_minus - (r + 1.0) ** one_minus) / norm
        total += float(np.sum(-np.expm1(draws * np.log1p(-p))))
    return total

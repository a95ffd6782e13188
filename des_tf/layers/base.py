"""DESLayer: the shared machinery of every DES substitution layer.

A DES layer owns one rank-local DynamicTable shard, a scalar "hook" weight through which
Keras' gradient tape reaches the layer's sparse backward (its gradient is always zero, and
Keras' optimizer assigns it instead of applying it: `overwrite_with_gradient`), and a step
counter for the table's update bookkeeping.
"""

from __future__ import annotations

import contextlib
import contextvars
import warnings
from collections.abc import Mapping

import keras
import tensorflow as tf
from keras.src.backend.common.symbolic_scope import in_symbolic_scope

from des_tf import optimizers
from des_tf.comm import assert_same_config
from des_tf.comm.cost import EXECUTION_PLANS, ExecutionPlan, InputMode
from des_tf.layers import combiners, planner, plans, table_state
from des_tf.layers.input_distribution import (
    OwnedEntries,
    check_shapes_agree,
    exchange_fields,
    local_entries,
    shared_entries,
)
from des_tf.layers.inputs import Fields, stack_fields
from des_tf.layers.plan import RowUpdate, served_partials
from des_tf.optimizers import SGD, SparseOptimizer
from des_tf.strategy import current_strategy
from des_tf.tables import DynamicTable

# What `plan=` accepts: an execution plan, or "auto" (the layer picks one; see
# des_tf.layers.planner).
AUTO = "auto"
PLAN_OPTIONS = (*EXECUTION_PLANS, AUTO)

# While set (see `serving`): {layer: table holding all of its rows} for single-process use.
_SERVING_TABLES: contextvars.ContextVar[Mapping | None] = contextvars.ContextVar(
    "des_serving_tables", default=None)


@contextlib.contextmanager
def serving(tables: Mapping):
    """Within it, DES layers compute in one process with no collective: each reads the
    rows of its ids from `tables[layer]` (a table holding all ranks' rows) with `find`,
    absent keys reading as zeros. Used to trace a serving function (checkpoint.export)."""
    token = _SERVING_TABLES.set(tables)
    try:
        yield
    finally:
        _SERVING_TABLES.reset(token)


def resolve_plan(plan: str | None, comm: str | None) -> str:
    """The requested plan from `plan=` or its deprecated spelling `comm=` (default "des")."""
    if comm is not None:
        if plan is not None:
            raise ValueError(f"give plan= only (comm= is its deprecated spelling), got "
                             f"plan={plan!r} and comm={comm!r}")
        warnings.warn("DES layers' and models' comm= is deprecated: call it plan= (it names "
                      "the execution plan, not des_tf.comm)", DeprecationWarning, stacklevel=3)
        plan = comm
    plan = ExecutionPlan.DES.value if plan is None else plan
    if plan not in PLAN_OPTIONS:
        raise ValueError(f"plan must be one of {PLAN_OPTIONS}, got {plan!r}")
    return plan


class DESLayer(keras.layers.Layer):
    """Base of the DES layers.

    Args:
      dim: width of the table's rows.
      table_optimizer: the sparse optimizer applied inside the table.
      initializer, initializer_scale, table_seed: the table's per-key initial rows.
      capacity_hint: expected rows on this rank.
      row_budget: if set, the most rows this rank's table keeps between training steps:
        after each step's update the least frequently looked-up rows (then the least
        recently updated, then the smallest keys) are evicted. A step may insert up to its
        batch's new owned ids above the budget before evicting. Eviction is per rank, so
        runs with a budget are not equivalent across different numbers of ranks.
      plan: how the layer's pooled partials are computed and aggregated, fixed when the
        layer is built (every rank must choose the same):
        "des" (default): dense DES aggregation (des_plan): each owner computes partials for
          every segment of the global batch and a reduce-scatter sums them; bytes grow
          with N.
        "alltoall": sparse aggregation (alltoall_plan): each owner sends only the
          segments it holds ids of, with their indices, to the rank holding the sample;
          the alltoall of pooled embeddings for one-hot fields.
        "replicated": the table is copied on every rank (replicated_plan): lookups are
          local, the sparse gradient (keys + row gradients) is allgathered and every copy
          applies it identically; for small tables. Not with `row_budget`.
        "rows": each rank fetches the rows of its samples' distinct ids from their owners
          and pools locally (rows_plan); the distinct ids' gradients go back to the
          owners. Fewer bytes than pooled partials where a rank's batch repeats ids
          (popular one-hot ids), more on long id lists.
        "auto": the layer picks one of the four from the cost model
          (des_tf.comm.cost.choose_plan) and the ids of the first batch it sees, summed
          over ranks so every rank picks the same, before any row exists (see
          des_tf.layers.planner for when: `plan_tables(model, data)` before `fit`, or
          the first eager call). `plan_in_effect` then holds the mode in effect.
        All of them compute the same numbers (single-process training on the global batch).
      vocabulary_size: rows the table may hold over all ranks, if known. plan="auto"
        considers "replicated" only when it is given and the whole table
        (vocabulary_size * dim * 4 bytes) fits planner.REPLICATED_MAX_BYTES (64 MiB).
      comm: deprecated spelling of `plan`.

    Attributes:
      requested_plan: `plan` as given (possibly "auto").
      plan_in_effect: the execution plan in effect ("des", "alltoall", "replicated" or "rows");
        None while a plan="auto" layer has not decided.
      plan_decision: an auto layer's planner.PlanDecision (statistics, bytes per plan),
        None otherwise.
    """

    cost_kind = "embedding"  # the des_tf.comm.cost operator kind of the layer

    def __init__(self, dim: int, *, table_optimizer: SparseOptimizer = SGD(0.01),
                 initializer: str = "uniform", initializer_scale: float = 0.05,
                 table_seed: int = 0, capacity_hint: int = 0, row_budget: int | None = None,
                 plan: str | None = None, vocabulary_size: int | None = None,
                 comm: str | None = None, **kwargs):
        plan = resolve_plan(plan, comm)
        if vocabulary_size is not None and vocabulary_size < 0:
            raise ValueError(f"vocabulary_size must be >= 0 or None, got {vocabulary_size}")
        if row_budget is not None and plan in plans.PLANS and not plans.get(
                plan).supports_row_budget:
            raise ValueError(f"row_budget is not supported with plan={plan!r} (each copy "
                             "counts only its own lookups, so evictions would differ between "
                             "ranks); use plan='des' or 'alltoall'")
        # Tables, partials and their sums are float32 whatever the dtype policy: inputs
        # are not cast to the compute dtype (ids weights keep float32), the output is.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.strategy = current_strategy(type(self).__name__)
        if row_budget is not None and row_budget < 0:
            raise ValueError(f"row_budget must be >= 0 or None, got {row_budget}")
        self.requested_plan = plan
        self.plan_in_effect = None if plan == AUTO else ExecutionPlan(plan)
        self.plan_decision = None
        self.vocabulary_size = vocabulary_size
        self.dim = dim
        self.row_budget = row_budget
        self.table_arguments = dict(initializer=initializer, initializer_scale=initializer_scale,
                                    table_seed=table_seed, capacity_hint=capacity_hint)
        self.loaded_rows = None  # rows read from a Keras file, until the plan is known
        self.table = DynamicTable(dim, optimizer=table_optimizer, initializer=initializer,
                                  initializer_scale=initializer_scale, seed=table_seed,
                                  capacity_hint=capacity_hint, name=f"{self.name}_table")
        # Before any variable is broadcast: ranks built with another dim, seed, optimizer...
        # fail here, naming what differs, instead of mis-training or failing obscurely.
        assert_same_config(
            {"layer": type(self).__name__, "table": self.table.spec(), "row_budget": row_budget,
             "sharding_seed": self.strategy.sharding_seed,
             "input_mode": self.strategy.input_mode, "plan": plan,
             "comm_dtype": self.strategy.comm_dtype,
             "vocabulary_size": vocabulary_size},
            what=f"configuration of DES layer {self.name!r}")
        # Keras assigns the hook its (zero) gradient on this rank instead of all-reducing
        # it: the gradient is ready only after the table's update, so an all-reduce would
        # cost the step one more collective round.
        self.gradient_hook = self.add_weight(shape=(), initializer="zeros", trainable=True,
                                             name="gradient_hook", overwrite_with_gradient=True)
        self.table_step = self.add_weight(shape=(), dtype="int64", initializer="zeros",
                                          trainable=False, name="table_step")

    def call(self, ids, weights=None, training=None):
        """The layer's DES computation, in float32, its output cast to the layer's compute
        dtype (a mixed_bfloat16 / mixed_float16 policy gets bfloat16 / float16 outputs;
        tables stay float32). In Keras' symbolic build pass (dense placeholders standing
        in for ragged ids) only the output's shape, with no collective traced. While
        planner.plan_tables runs the model, an undecided auto layer counts its ids; every
        DES layer then returns zeros of its output's shape (no table, no collective). An
        undecided auto layer called eagerly decides first."""
        if weights is not None:  # the same objects when already float32: layers reading
            # the same ids and weights share one id exchange (des_plan), found by identity
            weights = tf.nest.map_structure(
                lambda w: w if w.dtype == tf.float32 else tf.cast(w, tf.float32), weights)
        return tf.nest.map_structure(lambda x: tf.cast(x, self.compute_dtype),
                                     self._float32_call(ids, weights, training))

    def _float32_call(self, ids, weights, training):
        if in_symbolic_scope():
            return self._placeholder(ids)
        recording = planner.recorder()
        if recording is not None:
            fields = self._fields(ids, weights)
            recording.add(self, fields.source,
                          self._count_ids(fields) if self.plan_in_effect is None else None)
            return self._placeholder(ids)
        if self.plan_in_effect is None and self._serving_table() is None:
            if not tf.executing_eagerly():
                raise RuntimeError(
                    f"{type(self).__name__} {self.name!r} has plan='auto' and has not chosen "
                    "its plan yet: it decides from real ids, which a traced function does "
                    "not see. Call des_tf.layers.plan_tables(model, data) on every rank "
                    "before Model.fit / evaluate / predict or any tf.function (data: the "
                    "tf.data.Dataset of global batches fit reads, or one input batch), or "
                    "call the model once eagerly")
            planner.decide(self, self._count_ids(self._fields(ids, weights)))
        return self.des_call(ids, weights, training)

    def _placeholder(self, ids):
        """Zeros shaped like the output for this rank's samples of `ids`."""
        fields = tf.nest.flatten(ids)
        samples = fields[0].shape[0]
        if self.strategy.input_mode == InputMode.REPLICATED and samples is not None:
            samples = samples // self.strategy.size + (
                self.strategy.rank < samples % self.strategy.size)
        return self.symbolic_output(samples or 0, len(fields))

    def _count_ids(self, fields: Fields) -> planner.IdCounts:
        """planner.IdCounts of this rank's own samples of an eager batch."""
        return planner.count_ids(self.own_rows(fields.ids, fields.ids.nrows()),
                                 weighted=fields.weights is not None)

    def _set_plan(self, decision: planner.PlanDecision) -> None:
        if self.requested_plan != AUTO or self.plan_in_effect is not None:
            raise RuntimeError(f"{self.name}: the plan is chosen once, by plan='auto' layers")
        if self.row_budget is not None and not plans.get(decision.plan).supports_row_budget:
            raise ValueError(f"{self.name}: row_budget rules out {decision.plan!r}")
        self.plan_in_effect = decision.plan
        self.plan_decision = decision
        table_state.import_loaded_rows(self)

    def get_config(self) -> dict:
        """The layer's arguments (Keras model configs: `model.save`, `load_model`)."""
        return {**super().get_config(), "dim": self.dim, **self.table_arguments,
                "table_optimizer": self.table.optimizer.get_config(),
                "row_budget": self.row_budget, "plan": self.requested_plan,
                "vocabulary_size": self.vocabulary_size}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["table_optimizer"] = optimizers.deserialize(config["table_optimizer"])
        return super().from_config(config)

    def count_params(self) -> int:
        """The layer's Keras weights plus this rank's table rows x dim: what `summary()`
        shows as its "Param #" (rank-local, no collective; Keras' totals count Keras
        variables only, and `des_tf.tables.table_report(model)` gives every rank's rows and
        bytes). Optimizer slots are not counted, as Keras counts them apart."""
        return super().count_params() + int(self.table.size()) * self.dim

    def save_own_variables(self, store) -> None:
        """Keras saving: the layer's variables, then its whole table (a collective: every
        rank saves together; see des_tf.layers.table_state)."""
        for i, variable in enumerate(self.weights):
            store[str(i)] = variable
        table_state.save(self, store)

    def load_own_variables(self, store) -> None:
        """Keras loading: the layer's variables and this rank's rows of the table."""
        for i, variable in enumerate(self.weights):
            variable.assign(store[str(i)])
        table_state.load(self, store)

    def symbolic_output(self, samples: int, num_fields: int):
        """Zeros shaped like the output for `samples` samples (for the symbolic build)."""
        raise NotImplementedError

    def des_call(self, ids, weights, training):
        """The DES computation of the layer (see `call`)."""
        raise NotImplementedError

    def _fields(self, ids, weights) -> Fields:
        """The id input stacked as ragged [batch, fields, None] (see inputs.stack_fields)."""
        replicated = (self.strategy.input_mode == InputMode.REPLICATED
                      and self._serving_table() is None)
        return stack_fields(ids, weights, self.name, replicated=replicated)

    def _serving_table(self) -> DynamicTable | None:
        tables = _SERVING_TABLES.get()
        return None if tables is None else tables[self]

    def _exchange(self, fields: Fields, per_field: bool) -> OwnedEntries:
        """Brings the ids to their owners, one output row per (sample, field) when
        `per_field`, else per sample (all ids stay here when serving)."""
        if self._serving_table() is None and not plans.get(self.plan_in_effect).exchanges_ids:
            return self._own_entries(fields, per_field)
        segments, weights = fields.segments(per_field)
        if self._serving_table() is not None:
            return local_entries(segments, weights, serving=True)
        return exchange_fields(fields, per_field, self.strategy)

    def _own_entries(self, fields: Fields, per_field: bool) -> OwnedEntries:
        """Every id occurrence of this rank's own samples, for plans that move none (only
        the ranks' batch sizes are compared, so mismatched inputs fail clearly); shared
        with earlier layers on the same ids as exchanges are (shared_entries)."""
        def build() -> OwnedEntries:
            samples = fields.ids.nrows()
            if self.strategy.size > 1:
                check_shapes_agree(samples, fields.count if per_field else 1,
                                   self.strategy.input_mode == InputMode.REPLICATED)
            own = Fields(self.own_rows(fields.ids, samples),
                         None if fields.weights is None
                         else self.own_rows(fields.weights, samples), fields.count)
            return local_entries(*own.segments(per_field))

        return shared_entries(fields, per_field, self.strategy, False, build)

    def _partials(self, entries: OwnedEntries, training, with_square_norms: bool = False
                  ) -> tf.Tensor:
        served = self._serving_table()
        if served is not None:
            return served_partials(served, entries, with_square_norms)
        return plans.get(self.plan_in_effect).partials(
            self.table, entries, with_square_norms=with_square_norms, training=bool(training),
            hook=self.gradient_hook.value,
            update=RowUpdate(self.table_step.value, self.row_budget,
                             loss_scaled=self.dtype_policy.name == "mixed_float16"),
            comm_dtype=self.strategy.comm_dtype, sharding_seed=self.strategy.sharding_seed)

    def combiner_divisors(self, fields: Fields, per_field: tuple[str, ...]) -> tf.Tensor:
        """[own samples, fields] divisors of the pooled sums of `fields`, from each field's
        combiner (des_tf.layers.combiners); known locally from the ids, no communication."""
        return self.own_rows(combiners.divisors(fields, per_field), fields.ids.nrows())

    def own_rows(self, x: tf.Tensor, samples: tf.Tensor) -> tf.Tensor:
        """This rank's rows of a per-sample tensor that is global in "replicated_ids" input mode."""
        if self.strategy.input_mode != InputMode.REPLICATED or self._serving_table() is not None:
            return x
        start, count = self.strategy.local_rows(samples)
        return x[start:start + count]

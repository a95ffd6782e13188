"""What DESStrategy adds to Keras 3 training beyond tf.distribute: global metrics and
rank-0-only progress, and errors that name a lost rank.

Keras keeps each metric's state (sums, counts, AUC confusion counts) per process, so
under plain tf.distribute semantics every rank would report its own samples' metrics.
Here, whenever a model under a multi-rank DESStrategy computes its metric results, the
metric states are first summed (or averaged, per the variable's aggregation) over all
ranks with one allreduce per dtype, the results computed, and the local states put back:
the reported loss, AUC, accuracy... are those of all ranks' samples together, and equal
single-process metrics on the same data. With `DESStrategy(global_step_metrics=False)`
the states are summed only when the results are computed outside a traced step (epoch
and evaluate ends, explicit eager calls), which saves that allreduce in every step.
Non-zero ranks also train, evaluate and predict with `verbose=0`, and a collective
failure caused by a dead rank surfaces from `fit`, `evaluate` and `predict` as
des_tf.comm.RankLostError naming it. All are installed once, when des_tf is imported,
on `keras.Model`, and act only for models whose distribute strategy is a DESStrategy
with several ranks.
Also, for any model with comm="auto" DES layers that have not chosen their plan,
`fit`, `evaluate` and `predict` first plan them from the first batch of `x`, before
Keras traces a step (des_tf.layers.planner).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from des_tf import comm

_REDUCIBLE = ("sum", "mean")


def _des_strategy(model: keras.Model):
    from des_tf.strategy import DESStrategy  # the strategy module imports this one

    strategy = model.distribute_strategy
    return strategy if isinstance(strategy, DESStrategy) and strategy.size > 1 else None


def _global_metric_results(original):
    @functools.wraps(original)
    def get_metrics_result(self):
        strategy = _des_strategy(self)
        if strategy is None or (tf.inside_function() and not strategy.global_step_metrics):
            return original(self)
        variables = [v for m in self.metrics for v in m.variables if v.aggregation in _REDUCIBLE]
        local = [tf.identity(v.value) for v in variables]
        for dtype in sorted({v.dtype for v in variables}):  # same order on every rank
            group = [(v, x) for v, x in zip(variables, local) if v.dtype == dtype]
            flat = tf.concat([tf.reshape(x, [-1]) for _, x in group], axis=0)
            summed = comm.allreduce(flat)
            offset = 0
            for v, x in group:
                size = x.shape.num_elements()
                value = tf.reshape(summed[offset:offset + size], tf.shape(x))
                if v.aggregation == "mean":
                    value = value / tf.cast(comm.size(), value.dtype)
                v.assign(value)
                offset += size
        results = original(self)
        results = tf.nest.map_structure(tf.identity, results)  # read before restoring
        with tf.control_dependencies(tf.nest.flatten(results)):
            for v, x in zip(variables, local):
                v.assign(x)
        return results

    return get_metrics_result


def _quiet_ranks_named_failures(original):
    @functools.wraps(original)
    def run(self, *args, **kwargs):
        strategy = _des_strategy(self)
        if strategy is None:
            return original(self, *args, **kwargs)
        if strategy.rank != 0:
            kwargs["verbose"] = 0
        with comm.naming_lost_ranks():
            return original(self, *args, **kwargs)

    return run


def _plan_auto_layers(original):
    @functools.wraps(original)
    def run(self, *args, **kwargs):
        from des_tf.layers import planner  # the layers import the strategy, which imports us

        if planner.des_layers(self) and planner.unplanned(self):
            x = args[0] if args else kwargs.get("x")
            planner.plan_before_running(self, x, kwargs.get("batch_size"))
        return original(self, *args, **kwargs)

    return run


@functools.lru_cache(maxsize=None)
def install() -> None:
    """Wraps keras.Model once (idempotent)."""
    keras.Model.get_metrics_result = _global_metric_results(keras.Model.get_metrics_result)
    for method in ("fit", "evaluate", "predict"):
        wrapped = _quiet_ranks_named_failures(_plan_auto_layers(getattr(keras.Model, method)))
        setattr(keras.Model, method, wrapped)

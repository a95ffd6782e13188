"""Planning a whole model's plan="auto" layers (des_tf.layers.planner decides per
layer): `plan_tables` runs the model on real batches in recording mode, then every
undecided layer decides; `plan_report` says what each chose."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from des_tf.layers import planner
from des_tf.layers.base import DESLayer


def des_layers(model: keras.Model) -> list:
    """The DES layers of `model` (itself included if it is one), in layer order."""
    layers = [model] if isinstance(model, DESLayer) else []
    if hasattr(model, "_flatten_layers"):
        layers += [layer for layer in model._flatten_layers(include_self=False, recursive=True)
                   if isinstance(layer, DESLayer)]
    return layers


def unplanned(model: keras.Model) -> list:
    """The auto layers of `model` that have not chosen their plan yet."""
    return [layer for layer in des_layers(model) if layer.plan_in_effect is None]


def _first_batches(model, data, batches: int, batch_size: int | None) -> list | None:
    """Up to `batches` inputs of this rank as the model is called with them, from a
    Dataset of global batches, a distributed dataset, or one global batch of arrays /
    tensors (cut into `batch_size` samples, Keras' default 32); None if `data` cannot be
    read without consuming it (a generator, a PyDataset)."""
    strategy = des_layers(model)[0].strategy
    if isinstance(data, (tf.data.Dataset, tf.distribute.DistributedDataset)):
        source = strategy.slice_dataset(data) if isinstance(data, tf.data.Dataset) else data
        elements = []
        for element in source:
            elements.append(element)
            if len(elements) == batches:
                break
    elif isinstance(data, (np.ndarray, tf.Tensor, tf.RaggedTensor, tf.SparseTensor, dict,
                           list, tuple)):
        dataset = tf.data.Dataset.from_tensor_slices(data).batch(batch_size or 32)
        elements = list(strategy.slice_dataset(dataset).take(batches))
    else:
        return None
    return [keras.utils.unpack_x_y_sample_weight(e)[0] if isinstance(e, tuple) else e
            for e in elements]


def plan_tables(model: keras.Model, data, *, batches: int = 1,
                replicated_max_bytes: float = planner.REPLICATED_MAX_BYTES, verbose: bool = True,
                from_dataset: bool | None = None) -> dict[str, dict]:
    """Decides the plan of every unplanned plan="auto" layer of `model` from the first
    `batches` batches of `data`; call it on every rank, before training. Returns
    plan_report(model).

    `data`: a tf.data.Dataset of global batches (each rank reads its slice, as `fit`
    would), a distributed dataset, or one input exactly as the model is called with it
    (this rank's features; `from_dataset=True` treats arrays as fit's `x` instead).
    Layers already planned (or not auto) keep their mode. Every rank must call it with
    its own data at the same point (it runs one allreduce per planned layer).
    """
    layers = des_layers(model)
    if not layers or not unplanned(model):
        return plan_report(model)
    if isinstance(data, (tf.data.Dataset, tf.distribute.DistributedDataset)) or from_dataset:
        inputs = _first_batches(model, data, batches, None)
        if inputs is None:
            raise TypeError(f"plan_tables cannot read batches from a {type(data).__name__}: "
                            "pass a tf.data.Dataset or one input batch")
    else:
        inputs = [data]
    if not inputs:
        raise ValueError("plan_tables: the data holds no batch")
    with layers[0].strategy.scope(), planner.recording() as recording:
        for features in inputs:
            model(features, training=False)
    # In call order: a layer knows the plans of the earlier layers whose ids it may share.
    for layer, counts in recording.counts.items():
        planner.decide(layer, counts, replicated_max_bytes=replicated_max_bytes,
                       ids_from_plans=recording.ids_from_plans(layer), verbose=verbose)
    return plan_report(model)


def plan_before_running(model: keras.Model, x, batch_size: int | None) -> None:
    """Plans unplanned auto layers from the first batch of `x` as `fit` would read it
    (nothing if there are none, or if `x` cannot be peeked at: the layers then decide
    when first called eagerly, or raise when traced)."""
    if not des_layers(model) or not unplanned(model):
        return
    inputs = _first_batches(model, x, 1, batch_size)
    if inputs:
        plan_tables(model, inputs[0])


def plan_report(model: keras.Model) -> dict[str, dict]:
    """{layer name: {"requested": the plan as requested, "plan": the plan in effect (None while an
    auto layer is undecided), "bytes_per_step": the cost model's bytes per step and rank
    (sent + received) of each plan considered, "rounds": its collective rounds per step,
    "excluded": {plan: reason}, "description": a readable line}} for every DES layer of
    `model`; the last four only for auto layers that decided."""
    report = {}
    for layer in des_layers(model):
        decision = layer.plan_decision
        entry = {"requested": layer.requested_plan, "plan": layer.plan_in_effect}
        if decision is not None:
            entry.update(bytes_per_step=dict(decision.choice.bytes_per_step),
                         rounds=dict(decision.choice.rounds),
                         excluded=dict(decision.choice.excluded),
                         description=decision.describe())
        report[layer.name] = entry
    return report

"""predict_global: a model's predictions for every sample of the global batches, in the
order of the data, on every rank or on rank 0 (Keras' `predict` under DESStrategy returns
each rank's own slice)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from des_tf import comm
from des_tf.layers import model_planning

_DESTINATIONS = ("all", "rank0")


def predict_global(model: keras.Model, dataset: tf.data.Dataset, on: str = "all"):
    """Predicts every sample of `dataset`'s global batches (features, or (features,
    labels) elements, as `fit` takes them) and returns them in the data's order: on every
    rank (`on="all"`), or on rank 0 with None elsewhere (`on="rank0"`). A collective:
    every rank calls it with the same data. Each rank predicts its own slice of a batch
    (strategy.slice_dataset) and the slices are gathered in rank order, which is their
    order within the global batch. Outputs keep the model's structure, as numpy arrays;
    None for a dataset with no batch."""
    if on not in _DESTINATIONS:
        raise ValueError(f"on must be one of {_DESTINATIONS}, got {on!r}")
    model_planning.plan_before_running(model, dataset, None)
    strategy = model.distribute_strategy
    slices = strategy.slice_dataset(dataset) if hasattr(strategy, "slice_dataset") else dataset
    batches = []
    for element in slices:
        features = element[0] if isinstance(element, tuple) else element
        local = model.predict_on_batch(features)
        batches.append(tf.nest.map_structure(
            lambda x: comm.allgather(tf.convert_to_tensor(x)).numpy(), local))
    if on == "rank0" and comm.rank() != 0:
        return None
    if not batches:
        return None
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)

"""Dense state: the replicated Keras weights and the Keras optimizer's variables (its
step counter included), identical on every rank, saved by rank 0 and loaded by all."""

from __future__ import annotations

import keras
import numpy as np

from des_tf.checkpoint.errors import CheckpointError


def _variables(model: keras.Model) -> dict[str, keras.Variable]:
    """{"model/i": weight, "optimizer/i": optimizer variable} in creation order."""
    found = {f"model/{i}": v for i, v in enumerate(model.weights)}
    if model.optimizer is not None:
        found.update({f"optimizer/{i}": v for i, v in enumerate(model.optimizer.variables)})
    return found


def ensure_built(model: keras.Model) -> None:
    """Builds the optimizer's slots if needed; the model itself must already be built."""
    if not model.built or not model.weights:
        raise CheckpointError("the model is not built yet: build it before restoring (call it "
                              "on one batch inside the strategy's scope), or restore with "
                              "CheckpointCallback(restore=True), which runs once fit built it")
    if model.optimizer is not None and not model.optimizer.built:
        with model.distribute_strategy.scope():  # optimizer slots live in the model's strategy
            model.optimizer.build(model.trainable_variables)


def capture(model: keras.Model) -> dict[str, np.ndarray]:
    """Every dense variable's value."""
    return {name: np.asarray(v.numpy()) for name, v in _variables(model).items()}


def optimizer_shapes(model: keras.Model) -> list[list[int]]:
    """Shapes of the optimizer's variables (recorded in the manifest)."""
    return [] if model.optimizer is None else [list(v.shape) for v in model.optimizer.variables]


def check(arrays: dict[str, np.ndarray], model: keras.Model, path: str) -> None:
    """Raises CheckpointError if the saved dense state does not fit the model."""
    variables = _variables(model)
    if sorted(arrays) != sorted(variables):
        raise CheckpointError(f"checkpoint {path} holds {len(arrays)} dense variables, the "
                              f"model and its optimizer have {len(variables)}")
    for name, v in variables.items():
        if tuple(arrays[name].shape) != tuple(v.shape):
            raise CheckpointError(f"checkpoint {path}: {name} ({v.path}) has shape "
                                  f"{arrays[name].shape}, the model's is {tuple(v.shape)}")


def assign(model: keras.Model, arrays: dict[str, np.ndarray]) -> None:
    """Sets every dense variable (after `check`)."""
    for name, v in _variables(model).items():
        v.assign(arrays[name])

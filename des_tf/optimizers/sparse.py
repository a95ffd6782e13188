"""Sparse optimizers that run inside an embedding table, one update per distinct key.

These are configurations: the update itself is C++ (ops/cc/kernels/sparse_optimizer.h),
applied in place to the rows a step touched. The formulas follow Keras 3's dense
optimizers of the same name; Adam's bias correction uses each row's own update count.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import keras
import tensorflow as tf

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


_CLIPPING = ("clipvalue", "clipnorm")


@dataclasses.dataclass(frozen=True)
class SparseOptimizer:
    """Base: a learning rate (a number > 0, or a Keras LearningRateSchedule called with
    the table's update count, 0 for its first update, as a Keras optimizer calls one
    with its iterations) plus the optimizer's named hyper-parameters.

    At most one of the keyword-only `clipvalue` / `clipnorm` (as in Keras) clips the
    table's gradient before each update: clipvalue each element of each distinct key's
    summed row gradient to [-clipvalue, clipvalue]; clipnorm the whole table's gradient
    (all distinct keys of the global batch, over all ranks) to that L2 norm."""

    learning_rate: float | LearningRateSchedule
    clipvalue: float | None = dataclasses.field(default=None, kw_only=True)
    clipnorm: float | None = dataclasses.field(default=None, kw_only=True)
    name: ClassVar[str]

    def __post_init__(self) -> None:
        given = [name for name in _CLIPPING if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError(f"{type(self).__name__}: give at most one of clipvalue and "
                             f"clipnorm, got {given}")
        for name in given:
            if not getattr(self, name) > 0:
                raise ValueError(f"{type(self).__name__}.{name} must be > 0, "
                                 f"got {getattr(self, name)!r}")
        # The other hyper-parameters are validated by the table op when it is created.
        if isinstance(self.learning_rate, LearningRateSchedule):
            return
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate,
                                                                  (int, float)):
            raise TypeError(f"{type(self).__name__}.learning_rate must be a number or a "
                            "keras.optimizers.schedules.LearningRateSchedule, got "
                            f"{type(self.learning_rate).__name__}")
        if not self.learning_rate > 0:
            raise ValueError(f"{type(self).__name__}.learning_rate must be > 0, "
                             f"got {self.learning_rate!r}")

    def learning_rate_at(self, updates) -> tf.Tensor:
        """The learning rate of the update made after `updates` earlier ones (float32)."""
        if isinstance(self.learning_rate, LearningRateSchedule):
            return tf.cast(self.learning_rate(updates), tf.float32)
        return tf.constant(self.learning_rate, tf.float32)

    def learning_rate_config(self) -> float | dict:
        """The learning rate as JSON-able data (a schedule as Keras serializes it)."""
        if isinstance(self.learning_rate, LearningRateSchedule):
            return keras.optimizers.schedules.serialize(self.learning_rate)
        return float(self.learning_rate)

    def get_config(self) -> dict:
        """The optimizer as JSON-able data (Keras model configs); `deserialize` inverts it."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        config["learning_rate"] = self.learning_rate_config()
        return {"class_name": type(self).__name__, "config": config}

    def hyperparameters(self) -> dict[str, float]:
        """Hyper-parameters other than the learning rate, by their C++ names."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("learning_rate", *_CLIPPING)}


@dataclasses.dataclass(frozen=True)
class SGD(SparseOptimizer):
    """w -= lr * g."""

    name: ClassVar[str] = "sgd"


@dataclasses.dataclass(frozen=True)
class Adagrad(SparseOptimizer):
    """a += g^2; w -= lr * g / sqrt(a + epsilon)."""

    initial_accumulator: float = 0.1
    epsilon: float = 1e-7
    name: ClassVar[str] = "adagrad"


@dataclasses.dataclass(frozen=True)
class Adam(SparseOptimizer):
    """Adam with per-row bias correction (t = the row's own update count)."""

    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    name: ClassVar[str] = "adam"


@dataclasses.dataclass(frozen=True)
class Ftrl(SparseOptimizer):
    """FTRL-Proximal with learning-rate power -1/2, L1/L2 regularisation and beta."""

    initial_accumulator: float = 0.1
    l1: float = 0.0
    l2: float = 0.0
    beta: float = 0.0
    name: ClassVar[str] = "ftrl"


def deserialize(config: dict) -> SparseOptimizer:
    """The optimizer a `SparseOptimizer.get_config()` describes."""
    classes = {cls.__name__: cls for cls in (SGD, Adagrad, Adam, Ftrl)}
    if config.get("class_name") not in classes:
        raise ValueError(f"unknown sparse optimizer {config.get('class_name')!r}; expected "
                         f"one of {sorted(classes)}")
    arguments = dict(config["config"])
    if isinstance(arguments["learning_rate"], dict):
        arguments["learning_rate"] = keras.optimizers.schedules.deserialize(
            arguments["learning_rate"])
    return classes[config["class_name"]](**arguments)

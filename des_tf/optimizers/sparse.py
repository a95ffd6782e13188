"""Sparse optimizers that run inside an embedding table, one update per distinct key.

These are configurations: the update itself is C++ (ops/cc/kernels/sparse_optimizer.h),
applied in place to the rows a step touched. The formulas follow Keras 3's dense
optimizers of the same name; Adam's bias correction uses each row's own update count.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar


@dataclasses.dataclass(frozen=True)
class SparseOptimizer:
    """Base: a learning rate plus the optimizer's named hyper-parameters."""

    learning_rate: float
    name: ClassVar[str]

    def __post_init__(self) -> None:
        # The other hyper-parameters are validated by the table op when it is created.
        if not self.learning_rate > 0:
            raise ValueError(f"{type(self).__name__}.learning_rate must be > 0, "
                             f"got {self.learning_rate!r}")

    def hyperparameters(self) -> dict[str, float]:
        """Hyper-parameters other than the learning rate, by their C++ names."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name != "learning_rate"}


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

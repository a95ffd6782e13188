"""Packages whose names load on first use (PEP 562), so importing one of their
TF-free modules (`des_tf.comm.cost`) does not pull in TensorFlow or Horovod."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping


def resolve(package: str, namespace: dict, name: str, names: Mapping[str, str]):
    """The package attribute `name`: the object of that name in module `names[name]`,
    else the submodule `name`. Kept in the package's `namespace`, so each name loads
    once; AttributeError if it is neither."""
    if name in names:
        value = getattr(importlib.import_module(names[name]), name)
    elif importlib.util.find_spec(f"{package}.{name}") is not None:
        value = importlib.import_module(f"{package}.{name}")
    else:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    namespace[name] = value
    return value

"""Loads des-tf's custom-op library once, with an error that says how to build it."""

from __future__ import annotations

import functools
import os
from types import ModuleType

import tensorflow as tf

LIBRARY_NAME = "_des_ops.so"
# Points des-tf at another build of the library, e.g. bazel-bin/ops/_des_ops.so.
LIBRARY_ENV = "DES_TF_OPS_LIBRARY"


class OpsLibraryNotBuiltError(ImportError):
    """The compiled op library is missing: the package was used without building it."""


def library_path() -> str:
    """Path of the op library: $DES_TF_OPS_LIBRARY, else the one inside the package."""
    return os.environ.get(LIBRARY_ENV) or os.path.join(os.path.dirname(__file__), LIBRARY_NAME)


@functools.lru_cache(maxsize=None)
def load() -> ModuleType:
    """Returns the loaded op library (its ops are attributes, e.g. `des_shard_owner`)."""
    path = library_path()
    if not os.path.exists(path):
        raise OpsLibraryNotBuiltError(
            f"des-tf's custom-op library is missing: {path} does not exist. Build it with "
            "`make build` from the repository root (or `pip install --no-build-isolation -e .`; "
            "or `bazel build //ops:_des_ops.so` and set "
            f"{LIBRARY_ENV}=$PWD/bazel-bin/ops/{LIBRARY_NAME})."
        )
    return tf.load_op_library(path)

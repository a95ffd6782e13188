"""Checkpoint files: named arrays in one .npz, written atomically (temporary name, fsync
where the disk is local, rename) on any TF file system, and read back only after their
sha256 matches the manifest's."""

from __future__ import annotations

import hashlib
import io

import numpy as np

from des_tf import fileio
from des_tf.checkpoint.errors import CheckpointError


def write_arrays(path: str, arrays: dict[str, np.ndarray]) -> dict:
    """Writes `arrays` to `path` atomically (fileio.write_bytes: the name only ever holds
    a complete file); returns {"sha256", "bytes"} for the manifest."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    fileio.write_bytes(path, data)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def read_arrays(path: str, expected: dict) -> dict[str, np.ndarray]:
    """The arrays of `path`, after checking its size and sha256 against `expected` (the
    manifest's entry); a missing, truncated or altered file raises CheckpointError."""
    try:
        data = fileio.read_bytes(path)
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint file {path}: {error}") from error
    if len(data) != expected["bytes"]:
        raise CheckpointError(f"checkpoint file {path} is truncated or altered: "
                              f"{len(data)} bytes, the manifest says {expected['bytes']}")
    if hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise CheckpointError(f"checkpoint file {path} is corrupted: its sha256 does not "
                              "match the manifest's")
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        return {name: loaded[name] for name in loaded.files}

"""Files and folders on any TensorFlow file system: everything des-tf writes or reads
(checkpoints, exports, generated data, plots, metrics) goes through here.

A path is local (no scheme, or `file://`) or a URL whose scheme TensorFlow has a file
system for (`gs://`, `hdfs://`, `s3://` with tensorflow-io, `ram://` in memory, ...).
Local files keep the durability of the local disk (fsync, atomic renames of folders);
on other file systems TensorFlow's `tf.io.gfile` does the work, and a folder "rename"
is a copy followed by a delete (what object stores do anyway). A scheme TensorFlow does
not know is an error (`check`), never a local folder named after it.
"""

from __future__ import annotations

import os
import posixpath
import shutil

import tensorflow as tf

_LOCAL_PREFIX = "file://"


def scheme(path: str) -> str:
    """The path's file-system scheme ("" for a local path)."""
    head, separator, _ = str(path).partition("://")
    return head if separator and head != "file" else ""


def _local(path: str) -> str:
    return str(path)[len(_LOCAL_PREFIX):] if str(path).startswith(_LOCAL_PREFIX) else str(path)


_reachable_schemes: set[str] = set()


def check(path: str) -> str:
    """Returns `path` if TensorFlow has a file system for its scheme; ValueError naming
    the scheme otherwise (a local folder called 'gs:' is never what was meant). Errors of
    a file system that exists (no credentials, no network) come from the real call."""
    name = scheme(path)
    if name and name not in _reachable_schemes:
        try:
            tf.io.gfile.exists(path)
        except tf.errors.UnimplementedError as error:
            raise ValueError(
                f"{path}: TensorFlow has no file system for '{name}://' in this process "
                f"({error.message}); install the package that provides it (for example "
                "tensorflow-io for s3:// or hdfs://) or use a local path") from None
        except tf.errors.OpError:
            pass
        _reachable_schemes.add(name)
    return path


def absolute(path: str) -> str:
    """A spelling of `path` that is the same in every process: local paths made absolute,
    URLs unchanged (os.path.abspath would turn gs://b into <cwd>/gs:/b)."""
    check(path)
    return path if scheme(path) else os.path.abspath(_local(path))


def join(path: str, *names: str) -> str:
    return posixpath.join(path, *names) if scheme(path) else os.path.join(_local(path), *names)


def exists(path: str) -> bool:
    return tf.io.gfile.exists(check(path)) if scheme(path) else os.path.exists(_local(path))


def isdir(path: str) -> bool:
    return tf.io.gfile.isdir(check(path)) if scheme(path) else os.path.isdir(_local(path))


def listdir(path: str) -> list[str]:
    """Names in folder `path` (without trailing slashes)."""
    if not scheme(path):
        return os.listdir(_local(path))
    return [name.rstrip("/") for name in tf.io.gfile.listdir(check(path))]


def makedirs(path: str) -> None:
    if scheme(path):
        tf.io.gfile.makedirs(check(path))
    else:
        os.makedirs(_local(path), exist_ok=True)


def rmtree(path: str) -> None:
    """Deletes folder `path` and everything in it; nothing if it does not exist."""
    if not scheme(path):
        shutil.rmtree(_local(path), ignore_errors=True)
        return
    try:
        tf.io.gfile.rmtree(check(path))
    except tf.errors.NotFoundError:
        pass


def remove(path: str) -> None:
    """Deletes file `path`; nothing if it does not exist."""
    if not exists(path):
        return
    if scheme(path):
        tf.io.gfile.remove(path)
    else:
        os.remove(_local(path))


def parent(path: str) -> str:
    """The folder holding `path`."""
    if scheme(path):
        return posixpath.dirname(path)
    return os.path.dirname(os.path.abspath(_local(path)))


def open_for_writing(path: str, mode: str = "wb"):
    """A new file `path` ("wb" or "w") as a context manager; on a local disk its
    contents are forced to disk when it closes."""
    if scheme(path):
        return tf.io.gfile.GFile(check(path), mode)
    return _DurableFile(_local(path), mode)


class _DurableFile:
    """A local file opened for writing whose close() fsyncs it first."""

    def __init__(self, path: str, mode: str):
        self._file = open(path, mode)

    def write(self, data) -> None:
        self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


def rename(source: str, target: str) -> None:
    """Renames file `source` to `target`, replacing it (atomic on a local disk)."""
    if scheme(target):
        tf.io.gfile.rename(check(source), target, overwrite=True)
    else:
        os.replace(_local(source), _local(target))


def write_bytes(path: str, data: bytes) -> None:
    """Writes `path` atomically, creating its folder if needed: the bytes go to
    `path + ".partial"` (forced to disk on a local file system), which is then renamed,
    so `path` only ever holds a whole file."""
    partial = path + ".partial"
    makedirs(parent(path))
    try:
        with open_for_writing(partial) as out:
            out.write(data)
        rename(partial, path)
    except (OSError, tf.errors.OpError):
        remove(partial)
        raise


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def read_bytes(path: str) -> bytes:
    """The bytes of file `path`; OSError (FileNotFoundError if missing) otherwise."""
    if not scheme(path):
        with open(_local(path), "rb") as f:
            return f.read()
    try:
        with tf.io.gfile.GFile(check(path), "rb") as f:
            return f.read()
    except tf.errors.NotFoundError as error:
        raise FileNotFoundError(f"{path}: {error.message}") from None
    except tf.errors.OpError as error:
        raise OSError(f"{path}: {error.message}") from None


def read_text(path: str) -> str:
    return read_bytes(path).decode()


def sync_folder(path: str) -> None:
    """Forces a local folder's entries (new names, renames) to disk; nothing elsewhere."""
    if scheme(path):
        return
    descriptor = os.open(_local(path), os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


REPLACED_SUFFIX = ".replaced"


def replace_tree(source: str, target: str, last: str | None = None) -> None:
    """Puts folder `source` in the place of `target` and removes `source`. Locally a
    rename (atomic; an older `target` waits as `target + REPLACED_SUFFIX` until the new one
    is in place). Elsewhere an older `target` is deleted, then every file is copied, file
    `last` (a name inside the folder) after all others, so a reader that trusts a folder
    only once `last` exists never sees a partial copy."""
    if scheme(target):
        rmtree(target)
        _copy_tree(source, target, last)
        rmtree(source)
        return
    trash = target + REPLACED_SUFFIX
    rmtree(trash)
    if os.path.exists(_local(target)):
        os.rename(_local(target), _local(trash))
    os.rename(_local(source), _local(target))
    sync_folder(os.path.dirname(os.path.abspath(_local(target))))
    rmtree(trash)


def _copy_tree(source: str, target: str, last: str | None = None) -> None:
    """Copies every file of folder `source` under `target` (`last` after the others)."""
    files = []
    for folder, _, names in tf.io.gfile.walk(check(source)):
        files += [posixpath.join(folder, name) for name in names]
    files.sort(key=lambda f: posixpath.relpath(f, source) == last)
    for file in files:
        destination = posixpath.join(target, posixpath.relpath(file, source))
        tf.io.gfile.makedirs(posixpath.dirname(destination))
        tf.io.gfile.copy(file, destination, overwrite=True)

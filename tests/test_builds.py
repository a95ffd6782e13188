"""Both builds of the op library (pip/setup.py and bazel) load and pass the op tests."""

import os
import shutil
import subprocess
import sys

import pytest

from des_tf import ops_library
from tests.horovod_harness import REPO_ROOT

# Tests of every op in the library, rerun against the bazel build.
OP_TESTS = ["tests/test_shard_owner.py", "tests/test_dynamic_table.py", "tests/test_index_ops.py"]


def _run(command, env=None, timeout=900):
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_missing_library_names_the_build_command(monkeypatch, tmp_path):
    monkeypatch.setenv(ops_library.LIBRARY_ENV, str(tmp_path / "absent.so"))
    ops_library.load.cache_clear()
    try:
        with pytest.raises(ops_library.OpsLibraryNotBuiltError, match="make build"):
            ops_library.load()
    finally:
        monkeypatch.undo()
        ops_library.load.cache_clear()


def test_pip_build_is_the_default_library():
    default = os.path.join(REPO_ROOT, "des_tf", ops_library.LIBRARY_NAME)
    assert os.path.exists(default), "run `make build` first"
    assert hasattr(ops_library.load(), "des_shard_owner")


def test_bazel_build_and_core_tests_pass():
    bazel = shutil.which("bazel")
    assert bazel, "bazel is missing: `make install` installs Debian's bazel-bootstrap"
    flags = [f"--repo_env=PYTHON_BIN_PATH={sys.executable}"]
    _run([bazel, "--batch", "build", *flags, "//ops:_des_ops.so"])
    _run([bazel, "--batch", "test", *flags, "//ops:core_tests"])
    library = os.path.join(REPO_ROOT, "bazel-bin", "ops", ops_library.LIBRARY_NAME)
    env = {**os.environ, ops_library.LIBRARY_ENV: library}
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *OP_TESTS],
                  env=env)
    assert " passed" in result.stdout and "failed" not in result.stdout

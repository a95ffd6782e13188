"""Builds and runs the TF-independent C++ core tests (ops/cc/tests/*_test.cc) with g++."""

import glob
import os
import subprocess

import pytest

from tests.horovod_harness import REPO_ROOT

CORE_TESTS = sorted(glob.glob(os.path.join(REPO_ROOT, "ops/cc/tests/*_test.cc")))


@pytest.mark.parametrize("source", CORE_TESTS, ids=os.path.basename)
def test_core(source, tmp_path):
    binary = tmp_path / "core_test"
    compile_cmd = ["g++", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread",
                   source, "-o", str(binary)]
    compiled = subprocess.run(compile_cmd, capture_output=True, text=True, timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_core_tests_exist():
    assert CORE_TESTS, "no ops/cc/tests/*_test.cc found"

"""Test tiers. `make test` runs everything (what CI runs); `make test-fast` runs the
single-process tests (`-m "not multirank and not build"`) for the edit loop.

Markers are given here, from what each test does, so a new test is tiered without
anyone remembering to mark it: `multirank` when the test or one of its fixtures starts
ranks (`run_ranks`, `horovodrun`, the CLI trainer or bench/compare.py in a subprocess);
`build` for the modules that compile the C++ / CUDA sources or build with bazel."""

from __future__ import annotations

import inspect

import pytest

_STARTS_RANKS = ("run_ranks(", "horovodrun", "_train_one_process(", "des_tf.train",
                 "compare.py")
_BUILD_MODULES = {"test_builds", "test_cc_cores", "test_cuda_compile"}


def pytest_configure(config):
    config.addinivalue_line("markers", "multirank: starts several ranks (horovodrun)")
    config.addinivalue_line("markers", "build: compiles sources or builds with bazel")


def _sources(item) -> str:
    """The source of the test function and of every fixture it uses."""
    functions = [item.function]
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        functions += [d.func for d in definitions]
    parts = []
    for function in functions:
        try:
            parts.append(inspect.getsource(function))
        except (OSError, TypeError):
            continue
    return "\n".join(parts)


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in _BUILD_MODULES:
            item.add_marker(pytest.mark.build)
        elif any(token in _sources(item) for token in _STARTS_RANKS):
            item.add_marker(pytest.mark.multirank)

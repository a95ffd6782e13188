# des-tf developer entry points. `make demo` and `make test` work on a fresh machine:
# each installs what is missing first (scripts/install.sh is idempotent).
VENV := .venv
PY := $(VENV)/bin/python
OPS_LIB := des_tf/_des_ops.so
OP_SOURCES := $(shell find ops/cc -name '*.h' -o -name '*.cc')

.PHONY: install build test test-fast demo bazel-build clean

install:
	@bash scripts/install.sh

# The op library, rebuilt when an op source or setup.py changes.
build: install
	@$(MAKE) --no-print-directory $(OPS_LIB)

$(OPS_LIB): $(OP_SOURCES) setup.py
	$(PY) -m pip install --no-build-isolation --no-deps -q -e .

bazel-build: install
	bazel build --repo_env=PYTHON_BIN_PATH=$(abspath $(PY)) //ops:_des_ops.so

test: build
	$(VENV)/bin/ruff check des_tf tests bench
	$(PY) -m pytest

# The single-process tests only (tests/conftest.py tiers them): the edit loop.
test-fast: build
	$(PY) -m pytest -m "not multirank and not build"

# The main job: DeepFM on 2 ranks over generated Criteo-like data (README, "The main job").
demo: build
	TF_CPP_MIN_LOG_LEVEL=2 $(VENV)/bin/horovodrun -np 2 -H localhost:2 --gloo \
	    $(PY) -m des_tf.train --flagfile=configs/demo_deepfm.flags

clean:
	rm -rf build $(OPS_LIB) *.egg-info
	-bazel clean --expunge

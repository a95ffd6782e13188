#!/usr/bin/env bash
# Idempotent set-up of everything des-tf needs on a fresh Debian machine:
#   Debian's bazel (offline-capable), iproute2 and openssh-server (bench/cluster), a .venv
#   with pinned TensorFlow and test tools, and Horovod 0.28.1 built from source against
#   TensorFlow 2.21 with Gloo.
# Each step is stamped with a hash of its inputs, so a second run with nothing
# changed does no work. A failing step names itself and shows its log's tail.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
LOGS="$ROOT/build/install-logs"
PYTHON=${PYTHON:-python3}

# bazel for the op library; iproute2 and openssh-server for bench/cluster's emulated hosts.
SYSTEM_PACKAGES="bazel-bootstrap bazel-bootstrap-source iproute2 openssh-server"
TF_VERSION=2.21.0
HOROVOD_VERSION=0.28.1
# The GPU wheel where a GPU is visible, else the much smaller CPU wheel.
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  TF_PACKAGE=tensorflow
else
  TF_PACKAGE=tensorflow-cpu
fi

mkdir -p "$LOGS"

# run_step NAME KEY COMMAND...: runs COMMAND unless NAME was stamped with KEY.
run_step() {
  local name=$1 key=$2
  shift 2
  local stamp="$STAMPS/$name"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    echo "install: $name: up to date"
    return 0
  fi
  local log="$LOGS/$name.log" start=$SECONDS
  echo "install: $name: running (log: ${log#"$ROOT"/})"
  if ! "$@" >"$log" 2>&1; then
    echo "install: step '$name' FAILED after $((SECONDS - start)) s; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  mkdir -p "$STAMPS"
  echo "$key" >"$stamp"
  echo "install: $name: done in $((SECONDS - start)) s"
}

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

system_packages() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "Debian packages $SYSTEM_PACKAGES are needed and this is not root:" \
      "install them with apt-get as root, then rerun." >&2
    return 1
  fi
  apt-get update -qq
  # shellcheck disable=SC2086  # a list of package names
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $SYSTEM_PACKAGES
}

create_venv() {
  "$PYTHON" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' ||
    { echo "Python >= 3.10 is needed (TensorFlow $TF_VERSION); set PYTHON=..." >&2; return 1; }
  "$PYTHON" -m venv "$VENV"
}

python_packages() {
  "$VENV/bin/pip" install --upgrade "$TF_PACKAGE==$TF_VERSION" -r "$ROOT/requirements.txt"
}

# Horovod's sdist fails on TF 2.21 only through its optional XLA source (it includes
# XLA headers TF no longer ships): drop that one file, build CPU collectives on Gloo.
horovod() {
  local work="$ROOT/build/horovod-sdist"  # left behind only if the build fails
  rm -rf "$work" && mkdir -p "$work"
  "$VENV/bin/pip" download --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" -d "$work"
  tar -xzf "$work/horovod-$HOROVOD_VERSION.tar.gz" -C "$work"
  local src="$work/horovod-$HOROVOD_VERSION"
  sed -i '/xla_mpi_ops\.cc/d' "$src/horovod/tensorflow/CMakeLists.txt"
  # Gloo's CMake files need the system cmake 3.x, not a cmake 4 from PyPI.
  PATH="/usr/bin:$PATH" \
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
    HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=GLOO \
    "$VENV/bin/pip" install --no-build-isolation --no-cache-dir "$src"
  "$VENV/bin/python" -c 'import horovod.tensorflow as hvd; hvd.init(); assert hvd.size() == 1'
  rm -rf "$work"
}

total_start=$SECONDS
if command -v bazel >/dev/null && [[ -d /usr/src/bazel-bootstrap/mock_repos/rules_cc ]] &&
  command -v ip tc >/dev/null && [[ -x /usr/sbin/sshd ]]; then
  echo "install: system-packages: up to date"
else
  run_step system-packages "$SYSTEM_PACKAGES" system_packages
fi
[[ -x "$VENV/bin/python" ]] || run_step venv "$PYTHON" create_venv
python_key="$TF_PACKAGE==$TF_VERSION $(hash_of "$ROOT/requirements.txt")"
run_step python-packages "$python_key" python_packages
run_step horovod "horovod==$HOROVOD_VERSION gloo-no-xla $python_key" horovod
echo "install: all steps done in $((SECONDS - total_start)) s"

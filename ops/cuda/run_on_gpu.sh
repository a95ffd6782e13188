#!/usr/bin/env bash
# The whole GPU check in one prepared script, for a lent GPU machine (nvcc and a
# driver, no TensorFlow, no network): builds the CUDA cores with nvcc alone,
# runs the GPU-vs-CPU test driver and the benchmark, then the test driver under
# compute-sanitizer's memcheck when the tool is there, and prints one summary
# table. Every step has a time limit and a failing step does not stop the
# others, so one short run tells everything. Logs go to $OUT (the device
# tool's return folder) or build/cuda/results.
#
#   ops/cuda/run_on_gpu.sh            # about 3 minutes on an H200
#   BENCH_ARGS=--quick ops/cuda/run_on_gpu.sh
set -u -o pipefail
cd "$(dirname "$0")/../.."
results=${OUT:-build/cuda/results}
mkdir -p "$results"
summary=()

# step NAME LIMIT_S LOG COMMAND...: runs COMMAND under a time limit, output to
# the terminal and LOG, and records its outcome and seconds for the summary.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  echo "=== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$results/$log"
  local rc=${PIPESTATUS[0]} outcome=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then outcome="timed out"; elif [ "$rc" != 0 ]; then outcome="failed (exit $rc)"; fi
  summary+=("| $name | $outcome | $((SECONDS - start)) | $log |")
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem \
  --format=csv | tee "$results/gpu.txt"
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
"$nvcc_bin" --version | tail -1 | tee -a "$results/gpu.txt"

step build 240 build.txt make -C ops/cuda -j"$(nproc)" check NVCC="$nvcc_bin"
step test 120 test.txt build/cuda/gpu_cores_test
step bench 240 bench.md build/cuda/gpu_bench ${BENCH_ARGS:-}
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  step memcheck 90 memcheck.txt "$sanitizer" --tool memcheck --leak-check full \
    --error-exitcode 9 build/cuda/gpu_cores_test
else
  summary+=("| memcheck | skipped: no compute-sanitizer | 0 | |")
fi

echo
echo "| step | outcome | seconds | log |"
echo "| --- | --- | ---: | --- |"
printf '%s\n' "${summary[@]}"
grep -c '^PASS' "$results/test.txt" | sed 's/^/test checks passed: /'
grep '^FAIL' "$results/test.txt" || true
for s in "${summary[@]}"; do case $s in *"| ok |"* | *"| skipped"*) ;; *) exit 1 ;; esac; done

"""Compiles the CUDA cores (ops/cuda/*.cu, their test driver and benchmark) with nvcc for
sm_90 and links the programs, so they cannot rot between sessions that have a GPU.

No GPU is needed; running the driver and the benchmark (`make -C ops/cuda test bench`)
is for a GPU machine. Objects go to build/cuda/ (make rebuilds only what changed)."""

import os
import shutil
import subprocess

from tests.horovod_harness import REPO_ROOT

NVCC_FALLBACK = "/usr/local/cuda/bin/nvcc"


def _nvcc() -> str:
    nvcc = shutil.which("nvcc") or (NVCC_FALLBACK if os.path.exists(NVCC_FALLBACK) else None)
    assert nvcc, (
        "nvcc not found on PATH or at /usr/local/cuda/bin/nvcc: the CUDA sources under "
        "ops/cuda/ cannot be compile-checked. Install the CUDA toolkit (nvcc >= 12) or put "
        "it on PATH."
    )
    return nvcc


def test_cuda_sources_compile():
    nvcc = _nvcc()
    result = subprocess.run(
        ["make", "-C", os.path.join(REPO_ROOT, "ops", "cuda"), "-j2", "check", f"NVCC={nvcc}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
    for program in ("gpu_cores_test", "gpu_bench"):
        assert os.path.exists(os.path.join(REPO_ROOT, "build", "cuda", program))

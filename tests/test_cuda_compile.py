"""Compiles the CUDA cores (ops/cuda/*.cu, their test driver and benchmark) with nvcc for
sm_90 and links the programs, so they cannot rot between sessions that have a GPU.

Also type-checks the DEVICE_GPU op wrappers (ops/cc/kernels/*.cu.cc) with -DGOOGLE_CUDA=1.
No GPU is needed; running the driver and the benchmark (`make -C ops/cuda test bench`)
is for a GPU machine. Objects go to build/cuda/ (make rebuilds only what changed)."""

import glob
import os
import shutil
import subprocess
import sys

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


def test_gpu_op_wrappers_compile():
    """The DEVICE_GPU kernels (ops/cc/kernels/*.cu.cc, `#if GOOGLE_CUDA`) type-check with
    -DGOOGLE_CUDA=1 against the installed TensorFlow's headers: every device-templated
    kernel class is instantiated for the GPU here, although no GPU wheel is installed."""
    flags = subprocess.run(
        [sys.executable, "-c",
         "import tensorflow as tf; print(' '.join(tf.sysconfig.get_compile_flags()))"],
        capture_output=True, text=True, timeout=300, check=True,
    ).stdout.split()
    cuda_include = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "include")
    assert os.path.exists(os.path.join(cuda_include, "cuda_runtime_api.h")), (
        f"no CUDA headers in {cuda_include}: install the CUDA toolkit or set CUDA_HOME")
    wrappers = sorted(glob.glob(os.path.join(REPO_ROOT, "ops", "cc", "kernels", "*.cu.cc")))
    assert wrappers
    for wrapper in wrappers:
        result = subprocess.run(
            ["g++", "-fsyntax-only", *flags, "-DGOOGLE_CUDA=1", f"-I{cuda_include}",
             "-Wno-deprecated-declarations", "-Wno-interference-size", wrapper],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, wrapper + "\n" + result.stderr[-8000:]

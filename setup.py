"""Builds the des_tf package and its custom-op library (des_tf/_des_ops.so).

The library is compiled from the same sources as the bazel target //ops:_des_ops.so,
with TensorFlow's own compile and link flags, so it loads into the installed
TensorFlow. TensorFlow must be importable while building: use
`pip install --no-build-isolation -e .` (or `make build`).

With DES_TF_CUDA=1 the library also gets the GPU kernels: ops/cuda/*.cu are compiled
with nvcc (DES_TF_CUDA_ARCH, default 90, i.e. sm_90; NVCC or CUDA_HOME locate it) and
linked with libcudart, and the `#if GOOGLE_CUDA` wrappers ops/cc/kernels/*.cu.cc are
compiled with -DGOOGLE_CUDA=1. Without it (the default) nothing CUDA is compiled.
"""

import glob
import os
import shutil
import subprocess

import setuptools
from setuptools.command.build_ext import build_ext

# CPU sources of the op library; CUDA sources (*.cu.cc) are built only with CUDA.
OP_SOURCES = sorted(
    path
    for pattern in ("ops/cc/kernels/*.cc", "ops/cc/ops/*.cc")
    for path in glob.glob(pattern)
    if not path.endswith(".cu.cc")
)

# TensorFlow's own headers trip these; keep in sync with copts in ops/BUILD.
WARNING_FLAGS = ["-Wno-sign-compare", "-Wno-deprecated-declarations", "-Wno-interference-size"]

# GPU build (opt-in): CUDA cores compiled by nvcc, TF wrappers by the C++ compiler.
CUDA_ENABLED = os.environ.get("DES_TF_CUDA", "0") == "1"
CUDA_CORE_SOURCES = sorted(glob.glob("ops/cuda/*.cu"))
CUDA_WRAPPER_SOURCES = sorted(glob.glob("ops/cc/kernels/*.cu.cc"))


def _cuda_home() -> str:
    """CUDA_HOME, else the toolkit holding nvcc (if it has the headers), else /usr/local/cuda."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc")
    if nvcc:
        home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if os.path.exists(os.path.join(home, "include", "cuda_runtime_api.h")):
            return home
    return "/usr/local/cuda"


def _compile_cuda_cores(build_temp: str) -> list:
    """nvcc-compiles ops/cuda/*.cu into position-independent objects; returns their paths."""
    cuda_home = _cuda_home()
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or os.path.join(cuda_home, "bin", "nvcc")
    if not os.path.exists(nvcc):
        raise SystemExit(f"des-tf: DES_TF_CUDA=1 but nvcc was not found at {nvcc} "
                         "(set NVCC or CUDA_HOME, or unset DES_TF_CUDA for the CPU build)")
    arch = os.environ.get("DES_TF_CUDA_ARCH", "90")
    out_dir = os.path.join(build_temp, "cuda")
    os.makedirs(out_dir, exist_ok=True)
    objects = []
    for source in CUDA_CORE_SOURCES:
        obj = os.path.join(out_dir, os.path.basename(source)[: -len(".cu")] + ".o")
        subprocess.check_call([nvcc, "-std=c++17", "-O3", "-Xcompiler", "-fPIC",
                               f"-gencode=arch=compute_{arch},code=[sm_{arch},compute_{arch}]",
                               "-c", source, "-o", obj])
        objects.append(obj)
    return objects


class BuildTfOpLibrary(build_ext):
    """Compiles the op library with tf.sysconfig flags and names it _des_ops.so."""

    def finalize_options(self) -> None:
        super().finalize_options()
        self.parallel = os.cpu_count() or 1

    def get_ext_filename(self, ext_name: str) -> str:
        # A TF op library is loaded by tf.load_op_library, not imported: no ABI tag.
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extensions(self) -> None:
        try:
            import tensorflow as tf
        except ImportError as error:
            raise SystemExit(
                "des-tf: TensorFlow must be installed before building the ops "
                "(run `make install`, then `pip install --no-build-isolation -e .`)"
            ) from error
        for ext in self.extensions:
            # TF's string fingerprint (tsl/platform/fingerprint.h) includes <farmhash.h>.
            farmhash = os.path.join(tf.sysconfig.get_include(), "external", "farmhash_archive",
                                    "src")
            ext.extra_compile_args = tf.sysconfig.get_compile_flags() + [
                f"-I{farmhash}", "-O3", "-g0", *WARNING_FLAGS]
            ext.extra_link_args = tf.sysconfig.get_link_flags()
            if CUDA_ENABLED:
                cuda_home = _cuda_home()
                ext.sources = OP_SOURCES + CUDA_WRAPPER_SOURCES
                ext.extra_objects = _compile_cuda_cores(self.build_temp)
                ext.extra_compile_args += ["-DGOOGLE_CUDA=1", f"-I{cuda_home}/include"]
                ext.extra_link_args += [f"-L{cuda_home}/lib64", "-lcudart"]
        super().build_extensions()


setuptools.setup(
    name="des-tf",
    version="0.1.0",
    description="Synchronous Distributed Equivalent Substitution training of recommender models "
    "for TensorFlow/Keras over Horovod",
    packages=setuptools.find_packages(include=["des_tf", "des_tf.*"]),
    python_requires=">=3.10",
    # TensorFlow (CPU or GPU wheel) and Horovod (built from source for TF 2.21) come
    # from scripts/install.sh: neither can be expressed as a plain requirement here.
    install_requires=["numpy", "absl-py"],
    ext_modules=[setuptools.Extension("des_tf._des_ops", sources=OP_SOURCES, language="c++")],
    cmdclass={"build_ext": BuildTfOpLibrary},
    zip_safe=False,
)

"""Builds the des_tf package and its custom-op library (des_tf/_des_ops.so).

The library is compiled from the same sources as the bazel target //ops:_des_ops.so,
with TensorFlow's own compile and link flags, so it loads into the installed
TensorFlow. TensorFlow must be importable while building: use
`pip install --no-build-isolation -e .` (or `make build`).
"""

import glob
import os

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
            ext.extra_compile_args = tf.sysconfig.get_compile_flags() + ["-O3", "-g0", *WARNING_FLAGS]
            ext.extra_link_args = tf.sysconfig.get_link_flags()
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

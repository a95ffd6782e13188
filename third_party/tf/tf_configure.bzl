"""Repository rule exposing the installed TensorFlow's headers and framework library.

Runs the project's Python to ask tf.sysconfig where TensorFlow lives, so the op
library is built against exactly the TensorFlow it will be loaded into.
"""

_QUERY = "; ".join([
    "import tensorflow as tf",
    "print(tf.sysconfig.get_include())",
    "print(tf.sysconfig.get_lib())",
    "print(' '.join(tf.sysconfig.get_compile_flags()))",
])

def _python_bin(repository_ctx):
    configured = repository_ctx.os.environ.get("PYTHON_BIN_PATH")
    if configured:
        return configured
    venv_python = repository_ctx.path(Label("//:WORKSPACE")).dirname.get_child(".venv").get_child("bin").get_child("python")
    if venv_python.exists:
        return str(venv_python)
    return str(repository_ctx.which("python3"))

def _tf_configure_impl(repository_ctx):
    python = _python_bin(repository_ctx)
    result = repository_ctx.execute([python, "-c", _QUERY], quiet = True)
    if result.return_code != 0:
        fail("tf_configure: `%s` cannot import tensorflow (run `make install`, or set " % python +
             "PYTHON_BIN_PATH to a Python that has it):\n" + result.stderr)
    lines = result.stdout.strip().split("\n")
    include_dir, lib_dir, compile_flags = lines[-3], lines[-2], lines[-1]
    repository_ctx.symlink(include_dir, "include")
    repository_ctx.symlink(lib_dir + "/libtensorflow_framework.so.2", "libtensorflow_framework.so.2")
    defines = [flag[2:] for flag in compile_flags.split(" ") if flag.startswith("-D")]
    repository_ctx.template(
        "BUILD",
        Label("//third_party/tf:BUILD.tpl"),
        {"%{DEFINES}": repr(defines)},
    )

tf_configure = repository_rule(
    implementation = _tf_configure_impl,
    environ = ["PYTHON_BIN_PATH"],
    local = True,
)

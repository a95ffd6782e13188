"""des_tf.fileio and the job outputs built on it, on TF's in-memory ram:// file system:
atomic writes, folder replacement, the metrics JSON, the plot and generated data land
there and nothing is written locally; an unknown scheme is an error."""

import json
import os

import pytest
import tensorflow as tf

from des_tf import fileio
from des_tf.cli import report
from des_tf.data import synthetic


@pytest.fixture
def ram(tmp_path, monkeypatch):
    """A fresh ram:// folder; the working directory is an empty local folder, checked
    to stay empty (a URL mistaken for a local path would create 'ram:' there)."""
    monkeypatch.chdir(tmp_path)
    root = f"ram://{os.getpid()}-{os.urandom(4).hex()}"
    yield root
    assert os.listdir(tmp_path) == []
    fileio.rmtree(root)


def test_write_read_and_replace_folders(ram):
    fileio.write_text(fileio.join(ram, "a", "x.txt"), "one")
    assert fileio.read_text(fileio.join(ram, "a", "x.txt")) == "one"
    assert not fileio.exists(fileio.join(ram, "a", "x.txt.partial"))
    fileio.write_text(fileio.join(ram, "new", "inner", "y.txt"), "two")
    fileio.write_text(fileio.join(ram, "new", "last.txt"), "three")
    fileio.replace_tree(fileio.join(ram, "new"), fileio.join(ram, "a"), last="last.txt")
    assert sorted(fileio.listdir(fileio.join(ram, "a"))) == ["inner", "last.txt"]
    assert fileio.read_text(fileio.join(ram, "a", "inner", "y.txt")) == "two"
    assert not fileio.exists(fileio.join(ram, "new"))
    with pytest.raises(FileNotFoundError):
        fileio.read_bytes(fileio.join(ram, "missing"))


def test_absolute_keeps_urls_and_unknown_schemes_fail(tmp_path):
    assert fileio.absolute("ram://x/y") == "ram://x/y"
    assert fileio.absolute("rel") == os.path.join(os.getcwd(), "rel")
    with pytest.raises(ValueError, match="no file system for 'nosuchfs://'"):
        fileio.absolute("nosuchfs://bucket/x")


def test_metrics_json_and_plot_go_to_the_file_system(ram):
    report.print_summary({"auc": 0.75}, fileio.join(ram, "out", "metrics.json"))
    assert json.loads(fileio.read_text(fileio.join(ram, "out", "metrics.json"))) == {"auc": 0.75}
    report.plot_curve([(1, 0.7, 0.5), (2, 0.6, 0.6)], fileio.join(ram, "out", "curve.png"), "t")
    assert fileio.read_bytes(fileio.join(ram, "out", "curve.png")).startswith(b"\x89PNG")


def test_synthetic_data_is_generated_once_on_the_file_system(ram):
    spec = synthetic.SyntheticSpec(rows=300, seed=2)
    first = synthetic.cached(ram, spec, progress=lambda _: None)
    messages = []
    again = synthetic.cached(ram, spec, progress=messages.append)
    assert first == again and messages == []
    lines = fileio.read_text(first["path"]).splitlines()
    assert len(lines) == 300 and first["path"].startswith("ram://")
    assert tf.io.gfile.exists(first["path"])

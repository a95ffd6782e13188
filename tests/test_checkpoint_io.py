"""Sharded checkpoints in one process: round trip, retention, atomic writes under
failures (disk full, unwritable folder, crash leftovers), refusal of corrupted or
truncated files and of mismatched models, the serving export, and both on a TensorFlow
file system other than the local disk (TF's in-memory ram://)."""

import errno
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import fileio
from des_tf.checkpoint import CheckpointError
from tests import des_model


def _trained_model(steps: int = 4) -> keras.Model:
    with des.DESStrategy(sharding_seed=5).scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(des_model.make_batches().take(steps), verbose=0, shuffle=False)
    return model


def _state(model: keras.Model) -> dict[str, np.ndarray]:
    """Every table row (with slots and metadata) and every dense / optimizer variable."""
    state = {}
    for name, (_, table) in des.tables.model_tables(model).items():
        for field, value in zip(des.tables.TableRows._fields, table.export()):
            state[f"{name}/{field}"] = value.numpy()
    state.update({f"w{i}": v.numpy() for i, v in enumerate(model.weights)})
    state.update({f"o{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    return state


def _assert_state_equal(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


@pytest.fixture(scope="module")
def model():
    return _trained_model()


def _train_more(model, steps=2):
    model.fit(des_model.make_batches(seed=1).take(steps), verbose=0, shuffle=False)


def test_round_trip_restores_rows_slots_dense_and_optimizer(model, tmp_path):
    path = des.checkpoint.save(model, str(tmp_path))
    saved = _state(model)
    step = int(model.optimizer.iterations.numpy())
    assert path.endswith(f"ckpt-{step:012d}")
    manifest = json.loads(open(os.path.join(path, "manifest.json")).read())
    assert manifest["step"] == step and manifest["ranks"] == 1 and manifest["sharding_seed"] == 5
    tables = manifest["config"]["tables"]
    assert tables["table_0_ShardedEmbedding"]["dim"] == 4
    assert tables["table_2_FMInteraction"]["optimizer"] == "adam"
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    _train_more(model)
    assert des.checkpoint.restore_latest(model, str(tmp_path)) == step
    _assert_state_equal(_state(model), saved)


def test_keep_last_k_and_crash_leftovers_are_ignored(model, tmp_path):
    leftover = tmp_path / ".tmp-ckpt-000000000099"
    leftover.mkdir(parents=True)
    (leftover / "table_0_ShardedEmbedding.shard-00000-of-00001.npz").write_bytes(b"half")
    for step in (10, 20, 30, 40):
        des.checkpoint.save(model, str(tmp_path), step=step, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000000030", "ckpt-000000000040"]
    assert des.checkpoint.latest(str(tmp_path)).endswith("ckpt-000000000040")


def test_disk_full_fails_clearly_and_keeps_the_previous_checkpoint(model, tmp_path,
                                                                   monkeypatch):
    previous = des.checkpoint.save(model, str(tmp_path), step=1)
    before = {f: open(os.path.join(previous, f), "rb").read() for f in os.listdir(previous)}
    written = []

    def fill_disk(path, data):
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        written.append(path)
        open(path, "wb").write(data[:10])

    monkeypatch.setattr(fileio, "write_bytes", fill_disk)
    with pytest.raises(CheckpointError, match="No space left on device") as failure:
        des.checkpoint.save(model, str(tmp_path), step=2)
    assert "earlier checkpoints are intact" in str(failure.value)
    assert os.listdir(tmp_path) == ["ckpt-000000000001"]
    assert {f: open(os.path.join(previous, f), "rb").read() for f in os.listdir(previous)} == before


def test_unwritable_directory_fails_clearly(model, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the checkpoint folder should be")
    with pytest.raises(CheckpointError, match=r"rank 0: (NotADirectory|FileExists)Error"):
        des.checkpoint.save(model, str(blocker / "checkpoints"))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize("victim", ["table_1_SparseLinear.shard-00000-of-00001.npz",
                                    "dense.npz"])
def test_damaged_file_is_refused_by_name_and_nothing_is_loaded(model, tmp_path, damage, victim):
    path = des.checkpoint.save(model, str(tmp_path))
    target = os.path.join(path, victim)
    data = bytearray(open(target, "rb").read())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[:len(data) // 2]
    open(target, "wb").write(bytes(data))
    _train_more(model)
    before = _state(model)
    with pytest.raises(CheckpointError, match=victim.replace(".", r"\.")):
        des.checkpoint.restore(model, path)
    _assert_state_equal(_state(model), before)


def test_damaged_manifest_is_refused_by_name(model, tmp_path):
    path = des.checkpoint.save(model, str(tmp_path))
    with open(os.path.join(path, "manifest.json"), "r+") as f:
        f.truncate(40)
    with pytest.raises(CheckpointError, match="manifest.json"):
        des.checkpoint.restore(model, path)


class OtherModel(keras.Model):
    """One 8-wide embedding: not TinyCTR."""

    def __init__(self):
        super().__init__()
        self.embedding = des.layers.ShardedEmbedding(8, output="concat")

    def call(self, ids, training=None):
        return self.embedding(ids, training=training)


def test_checkpoint_of_another_model_is_refused(model, tmp_path):
    path = des.checkpoint.save(model, str(tmp_path))
    with des.DESStrategy(sharding_seed=5).scope():
        other = OtherModel()
        other.compile(optimizer="adam", loss="mse")
    other(tf.ragged.constant([[1, 2]], dtype=tf.int64))
    with pytest.raises(CheckpointError, match="holds tables"):
        des.checkpoint.restore(other, path)


def test_restore_before_build_says_how(tmp_path, model):
    path = des.checkpoint.save(model, str(tmp_path))
    with des.DESStrategy(sharding_seed=5).scope():
        fresh = des_model.TinyCTR()
        fresh.compile(optimizer="adam", loss="binary_crossentropy")
    with pytest.raises(CheckpointError, match="build it before restoring"):
        des.checkpoint.restore(fresh, path)


def test_callback_saves_every_k_steps_and_epoch_and_resumes(tmp_path):
    with des.DESStrategy(sharding_seed=5).scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    saver = des.checkpoint.CheckpointCallback(str(tmp_path), every_n_steps=3, keep=2)
    model.fit(des_model.make_batches().take(7), verbose=0, shuffle=False, callbacks=[saver])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000000006", "ckpt-000000000007"]
    saved = _state(model)
    with des.DESStrategy(sharding_seed=5).scope():
        resumed = des_model.TinyCTR()
        resumed.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    restorer = des.checkpoint.CheckpointCallback(str(tmp_path), restore=True)
    at_start = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: _assert_state_equal(_state(resumed), saved))
    resumed.fit(des_model.make_batches().take(1), verbose=0, callbacks=[restorer, at_start])
    assert restorer.restored_step == 7


def test_serving_export_predicts_like_the_model(model, tmp_path):
    features, _ = next(iter(des_model.make_batches(seed=3)))
    features = dict(features)
    features["history"] = tf.ragged.constant([[10**12 + i] for i in range(12)], tf.int64)
    des.checkpoint.export_for_serving(model, str(tmp_path / "served"), features)
    served = des.checkpoint.load_for_serving(str(tmp_path / "served"))
    expected = model(features, training=False).numpy()
    np.testing.assert_allclose(served.serve(features).numpy(), expected, rtol=1e-6)


def test_checkpoints_and_export_use_any_tf_file_system_and_write_nothing_locally(
        model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a path mistaken for a local one would land here
    directory = f"ram://checkpoints-{os.getpid()}"
    first = des.checkpoint.save(model, directory, step=1, keep=1)
    saved = _state(model)
    des.checkpoint.save(model, directory, step=2, keep=1)
    assert tf.io.gfile.listdir(directory) == ["ckpt-000000000002"]
    assert not tf.io.gfile.exists(first)
    _train_more(model)
    assert des.checkpoint.restore_latest(model, directory) == 2
    _assert_state_equal(_state(model), saved)

    features, _ = next(iter(des_model.make_batches(seed=3)))
    served_path = f"ram://served-{os.getpid()}"
    des.checkpoint.export_for_serving(model, served_path, dict(features))
    served = des.checkpoint.load_for_serving(served_path)
    np.testing.assert_allclose(served.serve(dict(features)).numpy(),
                               model(dict(features), training=False).numpy(), rtol=1e-6)
    assert os.listdir(tmp_path) == []


def test_a_file_system_tensorflow_does_not_know_is_an_error(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="no file system for 'nosuchfs://'"):
        des.checkpoint.save(model, "nosuchfs://bucket/checkpoints")
    with pytest.raises(ValueError, match="no file system for 'nosuchfs://'"):
        des.checkpoint.export_for_serving(model, "nosuchfs://bucket/served", {})
    assert os.listdir(tmp_path) == []


STOCK_TENSORFLOW_CLIENT = """
import sys
import numpy as np
import tensorflow as tf

path, inputs_file = sys.argv[1], sys.argv[2]
served = tf.saved_model.load(path)
inputs = dict(np.load(inputs_file))
expected = inputs.pop("expected")
signature = served.signatures["serving_default"]
output = signature(**{name: tf.constant(value) for name, value in inputs.items()})["output"]
np.testing.assert_allclose(output.numpy(), expected, rtol=1e-6)
assert "des_tf" not in sys.modules
print("served", sorted(signature.structured_input_signature[1]), flush=True)
"""


def test_serving_export_loads_in_stock_tensorflow_with_named_inputs(model, tmp_path):
    features, _ = next(iter(des_model.make_batches(seed=3)))
    features = dict(features)
    features["history"] = tf.ragged.constant([[10**12 + i] for i in range(12)], tf.int64)
    path = str(tmp_path / "served")
    des.checkpoint.export_for_serving(model, path, features)
    inputs = {"expected": model(features, training=False).numpy()}
    for name, value in features.items():
        if isinstance(value, tf.RaggedTensor):
            inputs[f"{name}_values"] = value.values.numpy()
            inputs[f"{name}_row_lengths"] = value.row_lengths().numpy()
        else:
            inputs[name] = value.numpy()
    np.savez(tmp_path / "inputs.npz", **inputs)
    # A process that never loads des_tf or its op library, as TF Serving would be.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", STOCK_TENSORFLOW_CLIENT, path,
                          str(tmp_path / "inputs.npz")], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:]
    names = sorted(set(inputs) - {"expected"})
    assert f"served {names}" in run.stdout
    shown = subprocess.run([os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
                            "show", "--dir", path, "--tag_set", "serve", "--signature_def",
                            "serving_default"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=300)
    assert shown.returncode == 0, shown.stdout[-3000:]
    for name in names:
        assert f"inputs['{name}']" in shown.stdout, shown.stdout
    assert "outputs['output']" in shown.stdout

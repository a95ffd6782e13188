"""Keras' own saving keeps the tables (issue 16 items 1-2): on 2 ranks, `model.save`,
`save_weights`, des_tf.callbacks' ModelCheckpoint and BackupAndRestore write every
rank's rows and slots, only rank 0 writes files; loading each file on 3 ranks and in
this process restores rows, slots and predictions exactly, and a job resumed by
BackupAndRestore on 3 ranks ends where an uninterrupted single process does."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import comm
from tests import des_model
from tests.horovod_harness import run_ranks

# The files the 2-rank job writes; each holds the model after its one epoch.
WEIGHT_FILES = ("model.weights.h5", "checkpoint-1.weights.h5")
MODEL_FILES = ("model.keras", "best.keras")


def _model(strategy: des.DESStrategy) -> keras.Model:
    """TinyCTR, compiled and built (BackupAndRestore and load_weights need it built)."""
    with strategy.scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
        features, _ = next(iter(strategy.slice_dataset(des_model.make_batches())))
        model(features, training=False)
    return model


def _state(model: keras.Model, strategy: des.DESStrategy) -> dict[str, np.ndarray]:
    """Every table's rows over all ranks (sorted by key) and the predictions on the first
    global batch (its ids are all in the tables, so predicting inserts no row)."""
    state = {}
    for name, (_, table) in des.tables.model_tables(model).items():
        rows = table.export()
        keys = comm.allgather(rows.keys).numpy()
        order = np.argsort(keys)
        state[f"{name}_keys"] = keys[order]
        for field in ("values", "slots", "metadata"):
            state[f"{name}_{field}"] = comm.allgather(getattr(rows, field)).numpy()[order]
    features, _ = next(iter(strategy.slice_dataset(des_model.make_batches())))
    state["predictions"] = comm.allgather(model(features, training=False)).numpy()
    return state


def _save_state(state: dict, out: str, name: str) -> None:
    if comm.rank() == 0:
        np.savez(os.path.join(out, f"{name}.npz"), **state)


def save_on_two_ranks(out: str) -> None:
    """Trains one epoch with the rank-0 writers, then saves with model.save / save_weights."""
    strategy = des.DESStrategy(sharding_seed=5)
    model = _model(strategy)
    callbacks = [
        des.callbacks.ModelCheckpoint(os.path.join(out, "checkpoint-{epoch}.weights.h5"),
                                      save_weights_only=True),
        des.callbacks.ModelCheckpoint(os.path.join(out, "best.keras"), monitor="auc",
                                      mode="max", save_best_only=True),
        des.callbacks.BackupAndRestore(os.path.join(out, "backup"), delete_checkpoint=False),
        *des.callbacks.on_rank_zero(keras.callbacks.CSVLogger(os.path.join(out, "log.csv")),
                                    keras.callbacks.TensorBoard(os.path.join(out, "tb"))),
    ]
    model.fit(des_model.make_batches(), epochs=1, verbose=0, callbacks=callbacks)
    for name in WEIGHT_FILES[:1] + MODEL_FILES[:1]:
        with des.callbacks.rank_zero_file(os.path.join(out, name)) as target:
            (model.save_weights if name.endswith(".h5") else model.save)(target)
    assert not tf.io.gfile.glob(des.callbacks.SCRATCH_ROOT + "/*"), "scratch files left"
    _save_state(_state(model, strategy), out, "trained")


def load_everywhere(out: str) -> None:
    """Loads each file into a fresh model (any number of ranks) and records its state;
    then resumes the backup (copied to backup_<ranks>) for the second epoch."""
    strategy = des.DESStrategy(sharding_seed=5)
    for name in WEIGHT_FILES:
        model = _model(strategy)
        model.load_weights(os.path.join(out, name))
        _save_state(_state(model, strategy), out, f"{name}_on_{comm.size()}")
    for name in MODEL_FILES:
        with strategy.scope():
            model = keras.models.load_model(os.path.join(out, name),
                                            custom_objects={"TinyCTR": des_model.TinyCTR})
        _save_state(_state(model, strategy), out, f"{name}_on_{comm.size()}")
    model = _model(strategy)
    backup = des.callbacks.BackupAndRestore(os.path.join(out, f"backup_{comm.size()}"))
    model.fit(des_model.make_batches(), epochs=2, verbose=0, callbacks=[backup])
    _save_state(_state(model, strategy), out, f"resumed_on_{comm.size()}")


def _assert_states(actual: dict, expected: dict, rtol: float) -> None:
    assert sorted(actual) == sorted(expected)
    for key in expected:
        if key.endswith(("_keys", "_metadata")):
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)
        else:
            np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=rtol,
                                       err_msg=key)


@pytest.mark.timeout(600)
def test_keras_saving_keeps_every_table_row_across_rank_counts(tmp_path):
    out = str(tmp_path)
    run_ranks(2, save_on_two_ranks, args=[out])
    written = sorted(os.listdir(out))
    assert written == sorted(["backup", "best.keras", "checkpoint-1.weights.h5", "log.csv",
                              "model.keras", "model.weights.h5", "tb", "trained.npz"])
    with open(os.path.join(out, "log.csv")) as log:
        assert log.read().startswith("epoch,auc,loss")
    for ranks in (1, 3):
        shutil.copytree(os.path.join(out, "backup"), os.path.join(out, f"backup_{ranks}"))
    run_ranks(3, load_everywhere, args=[out], timeout_s=300)
    load_everywhere(out)  # here: one process

    # The reference: one process, both epochs uninterrupted.
    strategy = des.DESStrategy(sharding_seed=5)
    model = _model(strategy)
    model.fit(des_model.make_batches(), epochs=2, verbose=0)
    uninterrupted = _state(model, strategy)

    trained = dict(np.load(os.path.join(out, "trained.npz")))
    assert len(trained["table_0_ShardedEmbedding_keys"]) == 80  # every id of the data
    for ranks in (1, 3):
        for name in WEIGHT_FILES + MODEL_FILES:
            loaded = dict(np.load(os.path.join(out, f"{name}_on_{ranks}.npz")))
            _assert_states(loaded, trained, rtol=1e-6)
        resumed = dict(np.load(os.path.join(out, f"resumed_on_{ranks}.npz")))
        _assert_states(resumed, uninterrupted, rtol=1e-5)

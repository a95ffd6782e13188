"""Checkpoints across jobs (issue 7 items 1-4): a checkpoint written by 2 ranks restores on
3 and on 1 rank and training continues to the numbers of an uninterrupted run; a rank
killed mid-training is named by the survivors within 60 s and the job resumes from the
last checkpoint to the same final state; the serving export predicts like the trained
2-rank model in a process without Horovod; mismatched ranks fail at start-up."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import comm
from tests import des_model
from tests.horovod_harness import RankFailure, run_ranks

HALF = des_model.STEPS_PER_EPOCH // 2  # steps before the checkpoint, and after it
KILL_AT = HALF + 3


def _model(strategy) -> keras.Model:
    with strategy.scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    return model


def _final_state(model, out: str, name: str) -> None:
    """Saves (on rank 0) every row gathered over ranks, the dense weights, the optimizer
    variables and the global evaluation loss."""
    state = {"eval": np.array(model.evaluate(des_model.make_batches(), verbose=0))}
    for table, (_, t) in des.tables.model_tables(model).items():
        rows = t.export()
        keys = comm.allgather(rows.keys).numpy()
        order = np.argsort(keys)
        state[f"{table}_keys"] = keys[order]
        state[f"{table}_values"] = comm.allgather(rows.values).numpy()[order]
        state[f"{table}_slots"] = comm.allgather(rows.slots).numpy()[order]
        state[f"{table}_updates"] = comm.allgather(rows.metadata[:, 1]).numpy()[order]
    state.update({f"dense_{i}": v.numpy() for i, v in enumerate(model.weights)})
    state.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    if comm.rank() == 0:
        np.savez(os.path.join(out, f"{name}.npz"), **state)


def _resume(strategy, checkpoints: str) -> tuple[keras.Model, int]:
    """A fresh model, built (in the scope, as `fit` builds it) by one inference call on
    this rank's slice, then restored."""
    model = _model(strategy)
    features, _ = next(iter(strategy.slice_dataset(des_model.make_batches())))
    with strategy.scope():
        model(features, training=False)
    return model, des.checkpoint.restore_latest(model, checkpoints)


def _test_batches() -> tf.data.Dataset:
    """Two global batches of other samples, one with ids no table has seen."""
    batches = list(des_model.make_batches(seed=3).take(2))
    unseen, labels = dict(batches[1][0]), batches[1][1]
    unseen["history"] = tf.ragged.constant([[10**12 + i, 7] for i in range(12)], tf.int64)
    return [batches[0], (unseen, labels)]


def train_first_half(out: str) -> None:
    """2 ranks: trains HALF steps, checkpoints, exports for serving and records the
    distributed model's predictions on the test batches."""
    strategy = des.DESStrategy(sharding_seed=5)
    model = _model(strategy)
    model.fit(des_model.make_batches().take(HALF), verbose=0, shuffle=False)
    des.checkpoint.save(model, os.path.join(out, "checkpoints"))
    batches = _test_batches()
    des.checkpoint.export_for_serving(model, os.path.join(out, "served"), batches[0][0])
    predictions = []
    for features, _ in batches:
        start, count = strategy.local_rows(12)
        mine = {k: v[start:start + count] for k, v in features.items()}
        predictions.append(comm.allgather(model(mine, training=False)).numpy())
    if comm.rank() == 0:
        inputs = {}
        for b, (features, _) in enumerate(batches):
            for k, v in features.items():
                if isinstance(v, tf.RaggedTensor):
                    inputs[f"{b}/{k}/values"], inputs[f"{b}/{k}/splits"] = v.values, v.row_splits
                else:
                    inputs[f"{b}/{k}"] = v.numpy()
        np.savez(os.path.join(out, "serving_inputs.npz"), **inputs)
        np.save(os.path.join(out, "predictions.npy"), np.stack(predictions))


def continue_second_half(out: str) -> None:
    """Any number of ranks: restores the 2-rank checkpoint and trains the other half."""
    strategy = des.DESStrategy(sharding_seed=5)
    model, step = _resume(strategy, os.path.join(out, "checkpoints"))
    assert step == HALF, step
    model.fit(des_model.make_batches().skip(HALF), verbose=0, shuffle=False)
    _final_state(model, out, f"resumed_on_{comm.size()}")


def train_uninterrupted(out: str) -> None:
    """1 rank: the reference, every step in one go."""
    model = _model(des.DESStrategy(sharding_seed=5))
    model.fit(des_model.make_batches(), verbose=0, shuffle=False)
    _final_state(model, out, "uninterrupted")


class _KillRank1(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if comm.rank() == 1 and int(self.model.optimizer.iterations.numpy()) == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)


def train_and_lose_rank_1(out: str) -> None:
    """2 ranks, checkpoints every 5 steps; rank 1 is SIGKILLed after step KILL_AT."""
    model = _model(des.DESStrategy(sharding_seed=5, collective_timeout_s=30))
    callbacks = [des.checkpoint.CheckpointCallback(os.path.join(out, "crash"), every_n_steps=5,
                                                   keep=2), _KillRank1()]
    with comm.naming_lost_ranks():
        model.fit(des_model.make_batches(), verbose=0, shuffle=False, callbacks=callbacks)


def resume_after_the_crash(out: str) -> None:
    """2 ranks: resumes from the newest checkpoint the crashed job left and finishes."""
    strategy = des.DESStrategy(sharding_seed=5)
    model, step = _resume(strategy, os.path.join(out, "crash"))
    print(f"rank {comm.rank()} resumed at step {step}", flush=True)
    model.fit(des_model.make_batches().skip(step), verbose=0, shuffle=False)
    _final_state(model, out, "resumed_after_crash")


def start_mismatched(out: str) -> None:
    """2 ranks started with different dims, sharding seeds and model names: each check
    must raise on both ranks."""
    del out
    rank = comm.rank()
    checks = {
        "dim": lambda: des.layers.ShardedEmbedding(4 + rank),
        "seed": lambda: des.layers.SparseLinear(table_seed=rank),
        "model": lambda: comm.assert_same_config({"model": ["DeepFM", "DCNv2"][rank]},
                                                 "flags"),
    }
    with des.DESStrategy().scope():
        for name, check in checks.items():
            try:
                check()
            except comm.ConfigMismatchError as error:
                print(f"rank {rank} {name} refused: {json.dumps(str(error))}", flush=True)
            else:
                raise AssertionError(f"mismatched {name} was accepted")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """Runs the first half on 2 ranks and the reference once for the module."""
    folder = tmp_path_factory.mktemp("resume")
    run_ranks(2, train_first_half, args=[str(folder)], timeout_s=240)
    run_ranks(1, train_uninterrupted, args=[str(folder)], timeout_s=240)
    return folder


def _assert_same_final_state(out, name: str) -> None:
    expected, actual = np.load(out / "uninterrupted.npz"), np.load(out / f"{name}.npz")
    assert sorted(actual.files) == sorted(expected.files)
    assert {"eval", "table_0_ShardedEmbedding_values", "table_2_FMInteraction_slots",
            "optimizer_0"} <= set(expected.files)
    for key in expected.files:
        np.testing.assert_allclose(actual[key], expected[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: {key}")


@pytest.mark.parametrize("ranks", [3, 1])
def test_two_rank_checkpoint_continues_on_other_rank_counts(out, ranks):
    run_ranks(ranks, continue_second_half, args=[str(out)], timeout_s=240)
    _assert_same_final_state(out, f"resumed_on_{ranks}")


def test_killed_rank_is_named_and_the_job_resumes(out):
    start = time.monotonic()
    with pytest.raises(RankFailure) as failure:
        run_ranks(2, train_and_lose_rank_1, args=[str(out)], timeout_s=120)
    elapsed = time.monotonic() - start
    assert elapsed < 60, elapsed
    # Whoever is first names the lost rank: rank 0's RankLostError, or horovodrun, which
    # terminates the surviving ranks as soon as one exits (under load it can win the race).
    message = str(failure.value)
    assert ("RankLostError: rank 0: a collective failed: lost rank 1" in message
            or "The first process to do so was:\nProcess name: 1\nExit code: 137" in message)
    assert sorted(os.listdir(out / "crash")) == ["ckpt-000000000005", "ckpt-000000000010"]
    output = run_ranks(2, resume_after_the_crash, args=[str(out)], timeout_s=240)
    assert "rank 0 resumed at step 10" in output
    _assert_same_final_state(out, "resumed_after_crash")


_SERVE_WITHOUT_HOROVOD = """
import sys, numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
inputs = np.load(sys.argv[2])
out = []
for b in range(2):
    names = {k.split("/")[1] for k in inputs.files if k.startswith(f"{b}/")}
    features = {n: (tf.RaggedTensor.from_row_splits(inputs[f"{b}/{n}/values"],
                                                    inputs[f"{b}/{n}/splits"])
                    if f"{b}/{n}/values" in inputs.files else tf.constant(inputs[f"{b}/{n}"]))
                for n in names}
    out.append(model.serve(features).numpy())
assert not any(m.startswith(("horovod", "des_tf")) for m in sys.modules), "imported horovod"
np.save(sys.argv[3], np.stack(out))
"""


def test_export_serves_like_the_distributed_model_without_horovod_or_des_tf(out, tmp_path):
    served = tmp_path / "served.npy"
    subprocess.run([sys.executable, "-c", _SERVE_WITHOUT_HOROVOD, str(out / "served"),
                    str(out / "serving_inputs.npz"), str(served)], check=True, timeout=120,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    expected = np.load(out / "predictions.npy")
    np.testing.assert_allclose(np.load(served), expected, rtol=1e-5, atol=1e-7)


def test_ranks_with_mismatched_configs_fail_at_start_up(tmp_path):
    output = run_ranks(2, start_mismatched, args=[str(tmp_path)], timeout_s=120)
    for name, detail in (("dim", "table.dim: 4 on rank 0, 5 on rank 1"),
                         ("seed", "table.seed: 0 on rank 0, 1 on rank 1"),
                         ("model", "model: 'DeepFM' on rank 0, 'DCNv2' on rank 1")):
        for rank in (0, 1):
            line = next(text for text in output.splitlines()
                        if f"rank {rank} {name} refused" in text)
            assert detail in json.loads(line.split("refused: ", 1)[1]), line

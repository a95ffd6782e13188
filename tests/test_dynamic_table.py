"""DynamicTable ops: optimizers against a numpy reference, growth, export/import,
eviction, concurrency, bad input, and tf.function / graph / checkpoint / SavedModel use."""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf.tables import DynamicTable, TableRows


class NumpyTable:
    """Reference: dict of float32 rows updated with the documented formulas in float32."""

    def __init__(self, optimizer: des.optimizers.SparseOptimizer, dim: int):
        self.opt, self.dim = optimizer, dim
        self.rows: dict[int, np.ndarray] = {}
        self.slots: dict[int, list[np.ndarray]] = {}
        self.updates: dict[int, int] = {}

    def insert(self, key: int, initial: np.ndarray) -> None:
        if key in self.rows:
            return
        self.rows[key] = initial.astype(np.float32).copy()
        h = self.opt.hyperparameters()
        zero = np.zeros(self.dim, np.float32)
        acc = np.full(self.dim, h.get("initial_accumulator", 0.0), np.float32)
        self.slots[key] = {"sgd": [], "adagrad": [acc], "adam": [zero.copy(), zero.copy()],
                           "ftrl": [zero.copy(), acc]}[self.opt.name]
        self.updates[key] = 0

    def apply(self, keys: np.ndarray, grads: np.ndarray, lr: float) -> None:
        summed: dict[int, np.ndarray] = {}
        for key, grad in zip(keys.tolist(), grads):
            summed[key] = summed[key] + grad if key in summed else grad.copy()
        lr, h = np.float32(lr), self.opt.hyperparameters()
        f32 = {k: np.float32(v) for k, v in h.items()}
        for key, g in summed.items():
            w, slots = self.rows[key], self.slots[key]
            self.updates[key] += 1
            if self.opt.name == "sgd":
                w -= lr * g
            elif self.opt.name == "adagrad":
                slots[0] += g * g
                w -= lr * g / np.sqrt(slots[0] + f32["epsilon"])
            elif self.opt.name == "adam":
                t = self.updates[key]
                b1, b2 = np.float64(f32["beta1"]), np.float64(f32["beta2"])
                alpha = np.float32(np.float64(lr) * np.sqrt(1.0 - b2**t) / (1.0 - b1**t))
                m, v = slots
                m += (g - m) * (np.float32(1) - f32["beta1"])
                v += (g * g - v) * (np.float32(1) - f32["beta2"])
                w -= m * alpha / (np.sqrt(v) + f32["epsilon"])
            else:  # ftrl
                z, n = slots
                l2 = f32["l2"] + f32["beta"] / (np.float32(2) * lr)
                n_new = n + g * g
                z += g - (np.sqrt(n_new) - np.sqrt(n)) / lr * w
                quadratic = np.sqrt(n_new) / lr + np.float32(2) * l2
                w[:] = (np.clip(z, -f32["l1"], f32["l1"]) - z) / quadratic
                n[:] = n_new


OPTIMIZERS = [
    des.optimizers.SGD(0.1),
    des.optimizers.Adagrad(0.05, initial_accumulator=0.2, epsilon=1e-6),
    des.optimizers.Adam(0.01, beta1=0.8, beta2=0.99, epsilon=1e-6),
    des.optimizers.Ftrl(0.1, initial_accumulator=0.1, l1=0.01, l2=0.1, beta=0.5),
]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda o: o.name)
def test_optimizer_matches_numpy_reference_over_60_steps(optimizer):
    dim, rng = 8, np.random.default_rng(0)
    table = DynamicTable(dim, optimizer=optimizer, seed=3)
    reference = NumpyTable(optimizer, dim)

    @tf.function
    def step_fn(keys, grads, step):
        table.apply_gradients(keys, grads, step)

    for step in range(1, 61):
        keys = rng.integers(0, 40, 64) * 1_000_003 - 17  # many duplicates, negative ids too
        rows = table.lookup(keys).numpy()
        for key, row in zip(keys.tolist(), rows):
            reference.insert(key, row)
            np.testing.assert_allclose(row, reference.rows[key], rtol=1e-6, atol=1e-7)
        grads = rng.normal(size=(64, dim)).astype(np.float32)
        step_fn(tf.constant(keys, tf.int64), grads, step)
        reference.apply(keys, grads, optimizer.learning_rate)
    exported = table.export()
    assert exported.keys.numpy().tolist() == sorted(reference.rows)
    np.testing.assert_allclose(exported.values.numpy(),
                               np.stack([reference.rows[k] for k in sorted(reference.rows)]),
                               rtol=1e-6, atol=1e-7)
    updates = exported.metadata.numpy()[:, 1]
    assert updates.tolist() == [reference.updates[k] for k in sorted(reference.rows)]


def test_initial_rows_are_a_function_of_key_seed_and_initializer():
    keys = np.array([5, -1, 2**62, 0, 77], np.int64)
    first = DynamicTable(16, seed=9, initializer="truncated_normal", initializer_scale=0.1)
    second = DynamicTable(16, seed=9, initializer="truncated_normal", initializer_scale=0.1)
    second.lookup(keys[::-1])
    np.testing.assert_array_equal(first.lookup(keys).numpy(), second.lookup(keys).numpy())
    other_seed = DynamicTable(16, seed=10, initializer="truncated_normal", initializer_scale=0.1)
    assert not np.allclose(first.lookup(keys).numpy(), other_seed.lookup(keys).numpy())
    assert np.abs(first.lookup(keys).numpy()).max() <= 0.2  # cut at 2 stddev
    uniform = DynamicTable(16, initializer="uniform", initializer_scale=0.3).lookup(keys)
    assert 0.1 < np.abs(uniform.numpy()).max() < 0.3
    np.testing.assert_array_equal(DynamicTable(4, initializer="zeros").lookup(keys).numpy(), 0)
    np.testing.assert_array_equal(
        DynamicTable(4, initializer="constant", initializer_scale=0.5).lookup(keys).numpy(), 0.5)


def test_grows_from_tiny_capacity_to_a_million_keys():
    table = DynamicTable(4, capacity_hint=1)
    keys = np.arange(1_000_000, dtype=np.int64) * 104729 - 5
    first = [table.lookup(batch).numpy() for batch in np.array_split(keys, 16)]
    assert int(table.size()) == 1_000_000
    sample = keys[::997]
    values, found = table.find_rows(sample)
    assert bool(tf.reduce_all(found))
    np.testing.assert_array_equal(values.numpy(), np.concatenate(first)[::997])
    assert table.export().keys.shape == (1_000_000,)


def test_find_does_not_insert_and_uses_the_default_row():
    table = DynamicTable(3)
    table.lookup([1])
    values, found = table.find_rows([1, 2], default_value=[7.0, 8.0, 9.0])
    assert found.numpy().tolist() == [True, False]
    np.testing.assert_array_equal(values.numpy()[1], [7, 8, 9])
    np.testing.assert_array_equal(table.find([2], default_value=-1.0).numpy(), [[-1, -1, -1]])
    assert int(table.size()) == 1


def test_export_import_round_trip_continues_training_identically():
    rng = np.random.default_rng(1)
    make = lambda: DynamicTable(5, optimizer=des.optimizers.Adam(0.01), seed=4)  # noqa: E731
    original, copy = make(), make()
    for step in range(1, 6):
        keys = rng.integers(0, 30, 50)
        original.lookup(keys)
        original.apply_gradients(keys, rng.normal(size=(50, 5)).astype(np.float32), step)
    copy.lookup([999])  # removed by the import (clear_first)
    copy.import_rows(original.export())
    for field, a, b in zip(TableRows._fields, original.export(), copy.export()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=field)
    keys, grads = rng.integers(0, 40, 50), rng.normal(size=(50, 5)).astype(np.float32)
    for table in (original, copy):
        table.apply_gradients(keys, grads, 6)
    np.testing.assert_array_equal(original.export().values.numpy(), copy.export().values.numpy())


def test_a_keras_learning_rate_schedule_drives_the_table_optimizer():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
    table = DynamicTable(2, optimizer=des.optimizers.SGD(schedule), initializer="zeros")
    for step in (1, 2, 3):  # learning rates 0.1, 0.05, 0.025: schedule(step - 1)
        table.apply_gradients([7], [[1.0, 2.0]], step=step)
    np.testing.assert_allclose(table.find([7]).numpy(), [[-0.175, -0.35]], rtol=1e-6)
    assert table.spec()["learning_rate"]["class_name"] == "ExponentialDecay"
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        des.optimizers.Adagrad("0.1")


def test_eviction_policies_return_what_they_removed():
    table = DynamicTable(2)
    for key in range(1, 6):  # key k is looked up k times
        for _ in range(key):
            table.lookup([key])
    assert table.evict("min_frequency", 3).numpy().tolist() == [1, 2]
    assert table.evict("row_budget", 1).numpy().tolist() == [3, 4]
    table.apply_gradients([10], [[1.0, 1.0]], step=1)
    table.apply_gradients([11], [[1.0, 1.0]], step=8)
    assert table.evict("max_age", 5).numpy().tolist() == [5, 10]  # 5 inserted at step 0
    assert table.export().keys.numpy().tolist() == [11]
    assert table.remove([11, 12]).numpy().tolist() == [11]
    assert int(table.size()) == 0
    with pytest.raises(ValueError, match="unknown eviction policy"):
        table.evict("lru", 1)


def test_concurrent_lookups_from_many_threads_lose_nothing():
    table = DynamicTable(4)
    lookup = tf.function(table.lookup)
    batches = [np.arange(t * 5_000, t * 5_000 + 20_000, dtype=np.int64) for t in range(8)]
    errors = []

    def worker(keys):
        try:
            for _ in range(3):
                lookup(tf.constant(keys))
                table.export()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    exported = table.export()
    distinct = np.unique(np.concatenate(batches))
    np.testing.assert_array_equal(exported.keys.numpy(), distinct)
    assert int(exported.metadata.numpy()[:, 0].sum()) == 3 * sum(len(b) for b in batches)


def test_works_in_tf_function_and_graph_mode():
    table = DynamicTable(2, optimizer=des.optimizers.SGD(1.0), initializer="zeros")

    @tf.function
    def train_step(keys):
        table.lookup(keys)
        table.apply_gradients(keys, tf.ones([tf.size(keys), 2]), 1)

    train_step(tf.constant([3, 3, 4], tf.int64))
    np.testing.assert_array_equal(table.find([3, 4]).numpy(), [[-2, -2], [-1, -1]])

    graph = tf.Graph()
    with graph.as_default():
        graph_table = DynamicTable(2, initializer="constant", initializer_scale=1.0)
        rows = graph_table.lookup(tf.constant([1, 2], tf.int64))
        size = graph_table.size()
        with tf.compat.v1.Session(graph=graph) as session:
            np.testing.assert_array_equal(session.run(rows), np.ones([2, 2]))
            assert session.run(size) == 2


def test_checkpoint_saves_and_restores_rows_and_optimizer_state(tmp_path):
    table = DynamicTable(3, optimizer=des.optimizers.Adagrad(0.1))
    table.lookup([1, 2, 3])
    table.apply_gradients([1, 2], np.ones([2, 3], np.float32), 1)
    path = tf.train.Checkpoint(table=table).save(str(tmp_path / "ckpt"))
    saved = table.export()
    table.apply_gradients([1], np.ones([1, 3], np.float32), 2)
    table.lookup([50])
    tf.train.Checkpoint(table=table).restore(path).assert_consumed()
    for a, b in zip(saved, table.export()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    fresh = DynamicTable(3, optimizer=des.optimizers.Adagrad(0.1))
    tf.train.Checkpoint(table=fresh).restore(path)
    np.testing.assert_array_equal(fresh.export().slots.numpy(), saved.slots.numpy())


def test_saved_model_serves_find_with_default_rows(tmp_path):
    module = tf.Module()
    module.table = DynamicTable(2, initializer="uniform", seed=1)
    module.table.lookup([10, 20])
    module.serve = tf.function(
        lambda keys: module.table.find(keys, default_value=0.0),
        input_signature=[tf.TensorSpec([None], tf.int64)])
    tf.saved_model.save(module, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    served = loaded.serve(tf.constant([10, 20, 30], tf.int64)).numpy()
    np.testing.assert_array_equal(served[:2], module.table.find([10, 20]).numpy())
    np.testing.assert_array_equal(served[2], [0, 0])
    module.table.lookup([30])  # the live table and the loaded one are separate resources
    np.testing.assert_array_equal(loaded.serve(tf.constant([30], tf.int64)).numpy(), [[0, 0]])


def _raw_table(**overrides):
    attrs = dict(dim=4, optimizer="sgd", hyperparameter_names=[], hyperparameter_values=[],
                 shared_name=f"raw_{len(overrides)}_{sorted(overrides.items())}")
    attrs.update(overrides)
    return des.ops_library.load().des_embedding_table(**attrs)


@pytest.mark.parametrize("overrides, message", [
    (dict(dim=0), "dim must be in"),
    (dict(dim=-3), "dim must be in"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
    (dict(optimizer="adam", hyperparameter_names=["momentum"], hyperparameter_values=[0.9]),
     "unknown hyper-parameter 'momentum' for optimizer adam"),
    (dict(optimizer="adam", hyperparameter_names=["beta1"], hyperparameter_values=[1.5]),
     "beta1 and beta2 must be < 1"),
    (dict(initializer="gaussian"), "unknown initializer 'gaussian'"),
    (dict(nonfinite_gradients="ignore"), "nonfinite_gradients must be"),
    (dict(capacity_hint=-1), "capacity_hint must be >= 0"),
])
def test_bad_table_configuration_is_invalid_argument(overrides, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        _raw_table(**overrides)


def test_bad_keys_and_gradients_are_invalid_argument():
    table = DynamicTable(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="keys must be int64, got int32"):
        table.lookup(tf.constant([1, 2], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="keys must be int64, got string"):
        table.find(tf.constant(["a"]))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"gradients must have shape \[len\(keys\), dim\] = \[2, 4\]"):
        table.apply_gradients([1, 2], np.ones([2, 3], np.float32), 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="learning_rate must be finite"):
        table.apply_gradients([1], np.ones([1, 4], np.float32), 1, learning_rate=0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="default_value must be a scalar"):
        table.find([1], default_value=[1.0, 2.0])
    ops = des.ops_library.load()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="called with dim 5 on a table of dim 4"):
        ops.des_embedding_table_lookup(table.resource_handle, tf.constant([1], tf.int64), dim=5)


def test_nonfinite_gradients_are_rejected_or_skipped_as_configured():
    grads = np.array([[1, 1], [np.nan, 0], [0, np.inf]], np.float32)
    strict = DynamicTable(2, initializer="zeros", optimizer=des.optimizers.SGD(1.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not finite.*no row was updated"):
        strict.apply_gradients([1, 2, 3], grads, 1)
    assert int(strict.size()) == 0
    lenient = DynamicTable(2, initializer="zeros", optimizer=des.optimizers.SGD(1.0),
                           nonfinite_gradients="skip")
    lenient.apply_gradients([1, 2, 3], grads, 1)
    assert lenient.export().keys.numpy().tolist() == [1]
    np.testing.assert_array_equal(lenient.find([1]).numpy(), [[-1, -1]])


def test_import_with_mismatched_dim_is_invalid_argument():
    source = DynamicTable(3, optimizer=des.optimizers.Adagrad(0.1))
    source.lookup([1, 2])
    target = DynamicTable(4, optimizer=des.optimizers.Adagrad(0.1))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"values must have shape \[n, dim\].*table of dim 4"):
        target.import_rows(source.export())
    sgd_target = DynamicTable(3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="slots must have shape"):
        sgd_target.import_rows(source.export())
    assert int(target.size()) == 0 and int(sgd_target.size()) == 0

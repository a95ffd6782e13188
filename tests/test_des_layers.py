"""DES layers and partial-sum ops in one process: results against direct formulas on the
tables' rows, the in-step sparse update, the Keras dtype policy, and clear errors for
misuse."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf.layers.partials import partial_sums, partial_sums_grad
from tests import des_model


@pytest.fixture(scope="module")
def strategy():
    return des.DESStrategy()


def _rows(layer, keys) -> np.ndarray:
    return layer.table.find(np.asarray(keys, np.int64)).numpy()


HISTORY = tf.ragged.constant([[1, 2, 2], [], [3]], dtype=tf.int64)  # duplicates, an empty list
HISTORY_WEIGHTS = tf.ragged.constant([[0.5, 1.0, 2.0], [], [3.0]])
AD = tf.constant([7, 8, 7], tf.int64)


@pytest.mark.parametrize("combiner", ["sum", "mean", "sqrtn"])
def test_sharded_embedding_pools_like_the_formula(strategy, combiner):
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(4, combiner=combiner, initializer="uniform",
                                            initializer_scale=0.5)
    out = layer([HISTORY, AD], [HISTORY_WEIGHTS, tf.ones([3])], training=True).numpy()
    assert out.shape == (3, 2, 4)
    v = {k: _rows(layer, [k])[0] for k in (1, 2, 3, 7, 8)}
    sums = [0.5 * v[1] + 3.0 * v[2], np.zeros(4), 3.0 * v[3]]
    divisor = {"sum": [1, 1, 1], "mean": [3.5, 1, 3.0],
               "sqrtn": [np.sqrt(0.25 + 1 + 4), 1, 3.0]}[combiner]
    expected_history = np.stack([s / d for s, d in zip(sums, divisor)])
    np.testing.assert_allclose(out[:, 0], expected_history, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out[:, 1], np.stack([v[7], v[8], v[7]]), rtol=1e-6)


def test_output_formats(strategy):
    with strategy.scope():
        concat = des.layers.ShardedEmbedding(2, output="concat")
        listed = des.layers.ShardedEmbedding(2, output="list")
    assert concat({"a": HISTORY, "b": AD}).shape == (3, 4)
    parts = listed([HISTORY, AD, AD])
    assert len(parts) == 3 and parts[0].shape == (3, 2)


def test_sparse_linear_and_fm_match_their_formulas(strategy):
    with strategy.scope():
        linear = des.layers.SparseLinear(initializer="uniform", initializer_scale=1.0)
        fm = des.layers.FMInteraction(3, initializer_scale=0.5)
    ids = [HISTORY, AD]
    weights = [HISTORY_WEIGHTS, tf.ones([3])]
    lr = linear(ids, weights, training=True).numpy()
    w = {k: _rows(linear, [k])[0, 0] for k in (1, 2, 3, 7, 8)}
    np.testing.assert_allclose(lr[:, 0], [0.5 * w[1] + 3 * w[2] + w[7], w[8], 3 * w[3] + w[7]],
                               rtol=1e-6)
    out = fm(ids, weights, training=True).numpy()
    for sample, (keys, xs) in enumerate([([1, 2, 2, 7], [0.5, 1, 2, 1]), ([8], [1]),
                                         ([3, 7], [3, 1])]):
        v = _rows(fm, keys)
        x = np.array(xs, np.float32)[:, None]
        expected = 0.5 * (np.sum(np.sum(x * v, 0) ** 2) - np.sum(x**2 * v**2))
        np.testing.assert_allclose(out[sample, 0], expected, rtol=1e-5, atol=1e-6)


def test_per_field_combiners_pool_each_field_as_a_layer_with_that_combiner(strategy):
    """combiner=(one per field): field f of the output equals field f of a layer whose one
    combiner is f's, on the same rows (rows depend only on the key and table_seed)."""
    ids, weights = [HISTORY, AD, HISTORY], [HISTORY_WEIGHTS, tf.ones([3]), HISTORY_WEIGHTS]
    per_field = ("mean", "sum", "sqrtn")

    def make(combiner):
        return des.layers.ShardedEmbedding(4, combiner=combiner, initializer="uniform",
                                           initializer_scale=0.5, table_seed=3)

    with strategy.scope():
        mixed, single = make(per_field), {name: make(name) for name in set(per_field)}
    out = mixed(ids, weights, training=True).numpy()
    for field, name in enumerate(per_field):
        np.testing.assert_allclose(out[:, field],
                                   single[name](ids, weights, training=True).numpy()[:, field],
                                   rtol=1e-6, err_msg=name)
    assert mixed.get_config()["combiner"] == list(per_field)


def test_sparse_linear_pools_each_field_by_its_combiner_forward_and_backward(strategy):
    """SparseLinear(combiner=("mean", "sum")): the history's weights are averaged (by the
    sum of x), the ad's summed; SGD moves each row by x_k / divisor of its field."""
    with strategy.scope():
        linear = des.layers.SparseLinear(combiner=("mean", "sum"),
                                         table_optimizer=des.optimizers.SGD(0.1))
    assert linear.cost_kind == "embedding"  # one partial per (sample, field) for the planner
    ids, weights = [HISTORY, AD], [HISTORY_WEIGHTS, tf.ones([3])]
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(linear(ids, weights, training=True))
    tape.gradient(loss, linear.trainable_weights)
    np.testing.assert_allclose(_rows(linear, [1, 2, 3, 7, 8])[:, 0],
                               [-0.1 * 0.5 / 3.5, -0.1 * 3 / 3.5, -0.1, -0.2, -0.1], rtol=1e-6)
    w = {k: _rows(linear, [k])[0, 0] for k in (1, 2, 3, 7, 8)}
    np.testing.assert_allclose(linear(ids, weights).numpy()[:, 0],
                               [(0.5 * w[1] + 3 * w[2]) / 3.5 + w[7], w[8], w[3] + w[7]],
                               rtol=1e-6)


def test_combiner_errors_name_the_problem(strategy):
    with strategy.scope():
        with pytest.raises(ValueError, match="combiner must be one of .* got 'max'"):
            des.layers.SparseLinear(combiner=("sum", "max"))
        with pytest.raises(ValueError, match="got an empty sequence"):
            des.layers.ShardedEmbedding(2, combiner=[])
        layer = des.layers.ShardedEmbedding(2, combiner=("sum", "sum"))
    with pytest.raises(ValueError, match="2 combiners for 3 id fields"):
        layer([HISTORY, AD, AD])


def test_dense_one_id_fields_pool_as_their_ragged_form(strategy):
    """Fields of one dense id per sample take a faster stacking path: the same outputs as
    their ragged form, per field (embedding) and per sample (LR, FM), with and without
    weights, inserting the same rows."""
    dense = [AD, tf.constant([4, 7, 9], tf.int64)]
    weights = [tf.constant([0.5, 2.0, 1.0]), tf.constant([1.5, 1.0, 3.0])]
    ragged = [tf.RaggedTensor.from_tensor(f[:, None]) for f in dense]
    ragged_weights = [tf.RaggedTensor.from_tensor(w[:, None]) for w in weights]
    for make in (lambda: des.layers.ShardedEmbedding(3, combiner="mean", output="concat"),
                 lambda: des.layers.SparseLinear(initializer="uniform", initializer_scale=1.0),
                 lambda: des.layers.FMInteraction(2)):
        with strategy.scope():
            fast, reference = make(), make()
        for given, reference_given in ((None, None), (weights, ragged_weights)):
            np.testing.assert_allclose(fast(dense, given, training=True).numpy(),
                                       reference(ragged, reference_given, training=True).numpy(),
                                       rtol=1e-6)
        np.testing.assert_allclose(_rows(fast, [4, 7, 8, 9]), _rows(reference, [4, 7, 8, 9]),
                                   rtol=1e-6)


def test_training_step_updates_owned_rows_inside_the_step(strategy):
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(2, table_optimizer=des.optimizers.SGD(0.1),
                                            initializer="zeros")
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(HISTORY, training=True))
    hook_gradient = tape.gradient(loss, layer.gradient_hook)
    assert float(hook_gradient) == 0.0  # the hook only carries the backward, never a value
    # d loss / d v_k = occurrences of k: key 2 twice, keys 1 and 3 once.
    np.testing.assert_allclose(_rows(layer, [1, 2, 3]), [[-0.1] * 2, [-0.2] * 2, [-0.1] * 2])
    assert int(layer.table_step.numpy()) == 1
    # summary()'s "Param #": the hook and step weights plus 3 rows x dim 2.
    assert layer.count_params() == 2 + 3 * 2


def test_inference_does_not_insert_rows(strategy):
    with strategy.scope():
        layer = des.layers.SparseLinear()
    layer(AD, training=False)
    assert int(layer.table.size()) == 0
    layer(AD, training=True)
    assert int(layer.table.size()) == 2


def test_partial_sums_op_and_its_registered_gradient():
    rng = np.random.default_rng(0)
    rows = tf.constant(rng.normal(size=(6, 3)), tf.float32)
    row_ids = tf.constant(rng.integers(0, 6, 40))
    segment_ids = tf.constant(rng.integers(0, 9, 40))  # segment 9 stays empty
    weights = tf.constant(rng.uniform(0.5, 2, 40), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(rows)
        sums, norms = partial_sums(rows, row_ids, segment_ids, weights, 10, True)
        loss = tf.reduce_sum(sums * tf.range(3, dtype=tf.float32)) + tf.reduce_sum(norms)
    gathered = tf.gather(rows, row_ids)
    np.testing.assert_allclose(sums, tf.math.unsorted_segment_sum(
        gathered * weights[:, None], segment_ids, 10), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norms, tf.math.unsorted_segment_sum(
        weights**2 * tf.reduce_sum(gathered**2, 1), segment_ids, 10), rtol=1e-5, atol=1e-6)
    with tf.GradientTape() as reference_tape:
        reference_tape.watch(rows)
        g = tf.gather(rows, row_ids)
        pooled = tf.math.unsorted_segment_sum(g * weights[:, None], segment_ids, 10)
        reference = (tf.reduce_sum(pooled * tf.range(3, dtype=tf.float32))
                     + tf.reduce_sum(weights**2 * tf.reduce_sum(g**2, 1)))
    reference_gradient = tf.convert_to_tensor(reference_tape.gradient(reference, rows))
    np.testing.assert_allclose(tape.gradient(loss, rows), reference_gradient, rtol=1e-5, atol=1e-6)


def test_partial_sums_reject_out_of_range_entries():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row_ids\[1\] = 5 is outside"):
        partial_sums(tf.zeros([5, 2]), [0, 5], [0, 0], [1.0, 1.0], 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"segment_ids\[0\] = 3 is outside"):
        partial_sums_grad(tf.zeros([3, 2]), tf.zeros([0]), tf.zeros([5, 2]), [0], [3], [1.0])


def test_layers_need_the_strategy_scope():
    with pytest.raises(RuntimeError, match=r"inside `des_tf.DESStrategy\(\).scope\(\)`"):
        des.layers.ShardedEmbedding(4)


def test_bad_inputs_and_options_are_reported(strategy):
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(2)
        with pytest.raises(ValueError, match="combiner must be one of"):
            des.layers.ShardedEmbedding(2, combiner="max")
    with pytest.raises(tf.errors.InvalidArgumentError, match="ids of field 0 must be int64"):
        layer(tf.ragged.constant([[1, 2]], dtype=tf.int32))
    with pytest.raises(ValueError, match="input_mode must be one of"):
        des.DESStrategy(input_mode="broadcast")
    with pytest.raises(RuntimeError, match="expects 4 ranks but runs on 1.*horovodrun -np 4"):
        des.DESStrategy(expected_size=4)
    replicated = des.DESStrategy(input_mode="replicated_ids")
    with replicated.scope():
        replicated_layer = des.layers.SparseLinear()
    with pytest.raises(ValueError, match="'replicated_ids' input mode id fields must be ragged"):
        replicated_layer(AD)


def test_former_names_of_input_modes_and_plans_are_deprecated():
    """The input modes' former names (shared with plans) and layers' / models' comm= (shared
    with des_tf.comm) still work, with a DeprecationWarning naming the new spelling."""
    with pytest.warns(DeprecationWarning, match="call it 'replicated_ids'"):
        strategy = des.DESStrategy(input_mode="replicated")
    assert strategy.input_mode == "replicated_ids"
    with strategy.scope():
        with pytest.warns(DeprecationWarning, match="comm= is deprecated: call it plan="):
            layer = des.layers.ShardedEmbedding(2, comm="alltoall")
        assert layer.requested_plan == layer.plan_in_effect == "alltoall"
        assert layer.get_config()["plan"] == "alltoall"
        with pytest.warns(DeprecationWarning, match="comm= is deprecated"):
            model = des.models.LR(des.models.FeatureSpec(sparse=("ad",)), comm="auto")
        assert model.sparse.requested_plan == "auto"
        with pytest.raises(ValueError, match="give plan= only"):
            des.layers.SparseLinear(plan="des", comm="des")


@pytest.fixture
def bfloat16_policy():
    with des_model.dtype_policy("mixed_bfloat16"):
        yield


def test_mixed_bfloat16_trains_with_float32_tables(bfloat16_policy):
    with des.DESStrategy(sharding_seed=5).scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    history = model.fit(des_model.make_batches().take(8), epochs=3, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    features, _ = next(iter(des_model.make_batches(seed=1)))
    assert model.embedding([features["history"]]).dtype == tf.bfloat16
    for _, table in des.tables.model_tables(model).values():
        rows = table.export()
        assert rows.values.dtype == tf.float32 and len(rows.keys) > 0


def _fit_tables(model, steps: int) -> dict[str, np.ndarray]:
    """Each table's rows, by key, after `steps` steps of fit."""
    model.fit(des_model.make_batches().take(steps), verbose=0, shuffle=False)
    return {name: des_model._table_rows(getattr(model, name))["values"]
            for name in des_model.TABLES}


def test_mixed_float16_updates_tables_with_unscaled_gradients(strategy):
    """des_tf's LossScaleOptimizer unscales the tables' updates: after 20 steps, rows are
    within float16 rounding of float32 training (measured 1.6e-3; loss-scaled gradients
    would put them 0.03-0.4 away). The policy's outputs are float16."""
    with strategy.scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    float32_rows = _fit_tables(model, 20)
    mixed = des_model.mixed_float16_model(keras.optimizers.Adam, 0.01, 2.0**8)
    for name, rows in _fit_tables(mixed, 20).items():
        assert int(getattr(mixed, name).table_step.numpy()) == 20  # no step skipped
        np.testing.assert_allclose(rows, float32_rows[name], atol=5e-3, err_msg=name)
    features, _ = next(iter(des_model.make_batches()))
    with mixed.distribute_strategy.scope():
        assert mixed.embedding([features["history"]]).dtype == tf.float16


def test_mixed_float16_refuses_keras_own_loss_scaling():
    with des_model.dtype_policy("mixed_float16"), des.DESStrategy().scope():
        model = des_model.TinyCTR()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    with pytest.raises(ValueError, match="optimizer=des_tf.optimizers.LossScaleOptimizer"):
        model.fit(des_model.make_batches().take(1), verbose=0)
    optimizer = des.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1))
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is des.optimizers.LossScaleOptimizer


def test_table_learning_rate_schedule_in_fit(strategy):
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.5, 0.0001])
    class OneEmbedding(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = des.layers.ShardedEmbedding(
                2, table_optimizer=des.optimizers.SGD(schedule), initializer="zeros",
                output="concat")

        def call(self, ids, training=None):
            return self.embedding(ids, training=training)

    with strategy.scope():
        model = OneEmbedding()
        model.compile(optimizer="sgd", loss="mse")
    layer = model.embedding
    ids = tf.ragged.constant([[5], [5]], tf.int64)
    dataset = tf.data.Dataset.from_tensors((ids, tf.ones([2, 2]))).repeat(2)
    model.fit(dataset, verbose=0)
    # Both samples look up row 5: d(mse)/d(row) = row - 1. Update 1 at schedule(0) = 0.5:
    # row = 0.5; update 2 at schedule(1) = 1e-4: row = 0.5 + 1e-4 * 0.5.
    np.testing.assert_allclose(_rows(layer, [5]), [[0.50005, 0.50005]], rtol=1e-6)
    assert int(layer.table_step.numpy()) == 2


def test_predict_global_in_one_process_is_predict(strategy):
    with strategy.scope():
        model = des_model.TinyCTR()
        model.compile(optimizer="adam", loss="binary_crossentropy")
    batches = des_model.make_batches().take(3)
    expected = model.predict(batches, verbose=0)
    np.testing.assert_allclose(des.predict_global(model, batches), expected, rtol=1e-6)
    np.testing.assert_allclose(des.predict_global(model, batches, on="rank0"), expected,
                               rtol=1e-6)
    with pytest.raises(ValueError, match="on must be one of"):
        des.predict_global(model, batches, on="rank1")


@pytest.mark.parametrize("comm_mode", ["des", "replicated"])
@pytest.mark.parametrize("clipping, expected", [({}, 0.5), ({"clipvalue": 0.1}, 0.1),
                                                ({"clipnorm": 0.5}, 0.25)])
def test_table_gradient_clipping(strategy, comm_mode, clipping, expected):
    class TwoKeys(keras.Model):
        def __init__(self):
            super().__init__()
            self.embedding = des.layers.ShardedEmbedding(
                2, table_optimizer=des.optimizers.SGD(1.0, **clipping), initializer="zeros",
                output="concat", plan=comm_mode)

        def call(self, ids, training=None):
            return self.embedding(ids, training=training)

    with strategy.scope():
        model = TwoKeys()
        model.compile(optimizer="sgd", loss="mse")
    ids = tf.ragged.constant([[5], [6]], tf.int64)
    model.fit(tf.data.Dataset.from_tensors((ids, tf.ones([2, 2]))), verbose=0)
    # mse over 2 samples x 2 columns: each of the 4 row elements has gradient -0.5 (norm 1).
    np.testing.assert_allclose(_rows(model.embedding, [5, 6]), np.full([2, 2], expected),
                               rtol=1e-6)


def test_clipping_options_are_checked():
    with pytest.raises(ValueError, match="at most one of clipvalue and clipnorm"):
        des.optimizers.SGD(0.1, clipvalue=1.0, clipnorm=1.0)
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        des.optimizers.Adam(0.1, clipnorm=0.0)
    assert "clipvalue" not in des.optimizers.Adagrad(0.1, clipvalue=2.0).hyperparameters()

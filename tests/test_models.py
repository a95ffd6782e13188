"""The CTR models: each trains at N = 2 with falling loss on learnable data; shapes and
FeatureSpec errors in one process."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import comm
from des_tf.models import FeatureSpec
from tests.horovod_harness import run_ranks

SPEC = FeatureSpec(sparse=("user", "ad", "history"), dense=("age", "price"))
TABLES = des.optimizers.Adagrad(0.2)
MODELS = {
    "LR": lambda: des.models.LR(SPEC, table_optimizer=des.optimizers.Ftrl(0.5)),
    "WideDeep": lambda: des.models.WideDeep(SPEC, embedding_dim=4, hidden=(16,),
                                            table_optimizer=TABLES),
    "DeepFM": lambda: des.models.DeepFM(SPEC, embedding_dim=4, hidden=(16, 16),
                                        table_optimizer=TABLES,
                                        linear_optimizer=des.optimizers.Ftrl(0.5)),
    "DCNv2": lambda: des.models.DCNv2(SPEC, embedding_dim=4, cross_layers=2, hidden=(16,),
                                      table_optimizer=TABLES),
    # DLRM sees the ids only through dot products of embeddings: larger, faster tables.
    "DLRM": lambda: des.models.DLRM(SPEC, embedding_dim=8, bottom=(8,), top=(16,),
                                    table_optimizer=des.optimizers.Adagrad(1.0)),
}
# The history averaged: every sparse layer of a model pools it with the spec's combiner.
MEAN_HISTORY = FeatureSpec(sparse=SPEC.sparse, dense=SPEC.dense, combiners={"history": "mean"})
SAVED = {**MODELS, "WideDeep, mean history": lambda: des.models.WideDeep(
    MEAN_HISTORY, embedding_dim=4, hidden=(16,), table_optimizer=TABLES)}


def learnable_batches(global_batch: int = 32, steps: int = 8) -> tf.data.Dataset:
    """Labels follow the ad id's parity and the user history length, plus noise."""
    rng = np.random.default_rng(7)
    n = global_batch * steps
    user = rng.integers(0, 50, n) + 1_000_000
    ad = rng.integers(0, 30, n) + 2_000_000
    history = [rng.integers(0, 100, rng.integers(0, 6)) + 3_000_000 for _ in range(n)]
    age = rng.normal(size=n).astype(np.float32)
    price = rng.normal(size=n).astype(np.float32)
    score = 2.0 * (ad % 2 == 0) - 1.0 + 0.3 * age + 0.2 * np.array([len(h) for h in history])
    labels = (score + rng.normal(scale=0.3, size=n) > 0.3).astype(np.float32)[:, None]
    features = {"user": tf.constant(user, tf.int64), "ad": tf.constant(ad, tf.int64),
                "history": tf.ragged.constant(history, dtype=tf.int64),
                "age": tf.constant(age), "price": tf.constant(price)}
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(global_batch)


def _train_every_model() -> None:
    """Rank body: 4 epochs of each model; the epoch loss (global) must fall every epoch
    and by at least 5% overall."""
    keras.utils.set_random_seed(0)  # dense initial weights: the same run every time
    strategy = des.DESStrategy()
    for name, make in MODELS.items():
        with strategy.scope():
            model = make()
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
        losses = model.fit(learnable_batches(), epochs=4, verbose=0).history["loss"]
        assert all(b < a for a, b in zip(losses, losses[1:])), (name, losses)
        assert losses[-1] < 0.95 * losses[0], (name, losses)
        print(f"rank {comm.rank()}: {name} loss {losses[0]:.3f} -> {losses[-1]:.3f}",
              flush=True)


def test_every_model_trains_on_two_ranks():
    output = run_ranks(2, _train_every_model, timeout_s=400)
    for name in MODELS:
        assert f"rank 0: {name} loss" in output


@pytest.mark.parametrize("name", list(MODELS))
def test_models_output_click_probabilities(name):
    with des.DESStrategy().scope():
        model = MODELS[name]()
    features, _ = next(iter(learnable_batches()))
    out = model(features, training=True).numpy()
    assert out.shape == (32, 1) and ((out > 0) & (out < 1)).all()


def test_feature_spec_errors_name_the_field():
    with pytest.raises(ValueError, match="needs at least one sparse"):
        FeatureSpec(sparse=())
    with pytest.raises(ValueError, match=r"\['a'\] are declared both"):
        FeatureSpec(sparse=("a",), dense=("a",))
    with pytest.raises(KeyError, match="feature 'ad' of the FeatureSpec is missing"):
        FeatureSpec(sparse=("ad",)).ids({"user": 1})
    with des.DESStrategy().scope(), pytest.raises(ValueError, match="DLRM needs dense"):
        des.models.DLRM(FeatureSpec(sparse=("ad",)))
    with pytest.raises(ValueError, match=r"combiners name \['age'\], which are not sparse"):
        FeatureSpec(sparse=("ad",), dense=("age",), combiners={"age": "mean"})
    with pytest.raises(ValueError, match="combiner of field 'ad' must be one of"):
        FeatureSpec(sparse=("ad",), combiners={"ad": "max"})


def test_feature_spec_combiners_reach_every_sparse_layer():
    """Spec order, "sum" where unnamed; a config saved before combiners existed sums all."""
    assert MEAN_HISTORY.field_combiners == ("sum", "sum", "mean")
    with des.DESStrategy().scope():
        model = SAVED["WideDeep, mean history"]()
    assert model.embedding.combiner == model.wide.combiner == ["sum", "sum", "mean"]
    assert FeatureSpec.from_config({"sparse": ["ad"], "dense": []}) == FeatureSpec(("ad",))


def _trained(make, strategy: des.DESStrategy) -> keras.Model:
    with strategy.scope():
        model = make()
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    des.layers.plan_tables(model, learnable_batches(steps=2))  # plan="auto" layers choose
    model.fit(learnable_batches(steps=2), verbose=0)
    return model


@pytest.mark.parametrize("name", list(SAVED))
def test_models_round_trip_through_keras_model_save(name, tmp_path):
    """model.save -> load_model recreates the model from its config (sparse optimizers
    and the FeatureSpec's combiners included) with every table row, slot and dense weight:
    same predictions."""
    strategy = des.DESStrategy()
    model = _trained(SAVED[name], strategy)
    model.save(tmp_path / "model.keras")
    with strategy.scope():
        loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.get_config() == model.get_config()
    saved_tables, loaded_tables = des.tables.model_tables(model), des.tables.model_tables(loaded)
    assert len(saved_tables) == len(loaded_tables) > 0
    for (_, saved), (_, restored) in zip(saved_tables.values(), loaded_tables.values()):
        for a, b in zip(saved.export(), restored.export()):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    features, _ = next(iter(learnable_batches()))
    np.testing.assert_array_equal(loaded.predict_on_batch(features),
                                  model.predict_on_batch(features))


def test_keras_saving_of_auto_layers_and_its_errors(tmp_path):
    """An undecided plan="auto" layer keeps loaded rows until its plan is chosen; a table
    over keras_file_max_bytes or a file of another shape is refused with the reason."""
    schedule = keras.optimizers.schedules.ExponentialDecay(0.2, 10, 0.5)
    strategy = des.DESStrategy()
    model = _trained(lambda: des.models.LR(SPEC, table_optimizer=des.optimizers.Adagrad(
        schedule, clipnorm=1.0), plan="auto"), strategy)
    model.save(tmp_path / "lr.keras")
    with strategy.scope():
        loaded = keras.models.load_model(tmp_path / "lr.keras")
    assert loaded.sparse.plan_in_effect is None and int(loaded.sparse.table.size()) == 0
    features, _ = next(iter(learnable_batches()))
    des.layers.plan_tables(loaded, features)
    assert int(loaded.sparse.table.size()) == int(model.sparse.table.size())
    np.testing.assert_array_equal(loaded.predict(features, verbose=0),
                                  model.predict(features, verbose=0))

    tiny = des.DESStrategy(keras_file_max_bytes=1000)
    model = _trained(MODELS["LR"], tiny)
    with pytest.raises(ValueError, match=r"more than one Keras file may hold .*des_tf.checkpoint"):
        model.save_weights(tmp_path / "too_large.weights.h5")

    model = _trained(MODELS["DeepFM"], strategy)
    store = {}
    model.embedding.save_own_variables(store)
    with strategy.scope():
        other = des.models.DeepFM(SPEC, embedding_dim=4, table_optimizer=des.optimizers.Adam(0.1))
    with pytest.raises(ValueError, match="another dim or table optimizer"):
        other.embedding.load_own_variables(store)
    with pytest.raises(ValueError, match="holds no table rows"):
        other.embedding.load_own_variables({"0": store["0"], "1": store["1"]})

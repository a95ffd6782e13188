"""A small CTR model using all three DES layers, its deterministic data, and a rank body
that trains it with Keras `fit` and saves what the equivalence tests compare."""

from __future__ import annotations

import contextlib
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import des_tf as des
from des_tf import comm

GLOBAL_BATCH = 12
STEPS_PER_EPOCH = 20
EPOCHS = 2
STEPS = STEPS_PER_EPOCH * EPOCHS
DENSE_FEATURES = 3
TABLES = ("embedding", "linear", "fm")  # TinyCTR's DES layers


def make_batches(seed: int = 0) -> tf.data.Dataset:
    """Global batches: two multi-hot fields (0..6 ids, some empty, duplicates within and
    across samples), one one-hot field (ragged [batch, 1], as "replicated" input mode
    needs), dense features, and labels of a hidden rule."""
    rng = np.random.default_rng(seed)
    samples = GLOBAL_BATCH * STEPS_PER_EPOCH
    lengths = rng.integers(0, 7, size=(2, samples))
    history = [rng.integers(0, 40, size=n) * 7919 + 3 for n in lengths[0]]
    query = [rng.integers(0, 15, size=n) * 104729 - 5 for n in lengths[1]]
    query_weights = [rng.uniform(0.5, 2.0, size=len(q)).astype(np.float32) for q in query]
    ad = rng.integers(0, 25, size=samples) * 15485863
    dense = rng.normal(size=(samples, DENSE_FEATURES)).astype(np.float32)
    ad_is_good = (ad // 15485863) % 2 == 0
    score = 2.0 * ad_is_good - 1.0 + 0.5 * dense[:, 0] + 0.1 * np.array([len(h) for h in history])
    labels = (score + rng.normal(scale=0.5, size=samples) > 0.3).astype(np.float32)[:, None]
    features = {
        "history": tf.ragged.constant(history, dtype=tf.int64),
        "query": tf.ragged.constant(query, dtype=tf.int64),
        "query_weights": tf.ragged.constant(query_weights, dtype=tf.float32),
        "ad": tf.RaggedTensor.from_tensor(tf.constant(ad[:, None], tf.int64)),
        "dense": tf.constant(dense),
    }
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(GLOBAL_BATCH)


class TinyCTR(keras.Model):
    """LR + FM + pooled embeddings (mean-combined, weighted query) + an MLP; `plan` is
    the execution mode of all three DES layers (see des_tf.layers.DESLayer);
    `vocabulary_sizes` ({"embedding" | "linear" | "fm": rows}) is passed to those layers."""

    def __init__(self, plan: str = "des", vocabulary_sizes: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        rows = dict(vocabulary_sizes or {})
        adagrad = des.optimizers.Adagrad(0.1)
        self.embedding = des.layers.ShardedEmbedding(
            4, combiner="mean", output="concat", table_optimizer=adagrad, table_seed=1,
            initializer="truncated_normal", initializer_scale=0.3, plan=plan,
            vocabulary_size=rows.get("embedding"))
        # Clipping on two tables: a clipnorm over all ranks' rows must equal one process's.
        self.linear = des.layers.SparseLinear(
            table_optimizer=des.optimizers.Ftrl(0.2, l2=0.01, clipvalue=0.05), plan=plan,
            vocabulary_size=rows.get("linear"))
        self.fm = des.layers.FMInteraction(3, table_optimizer=des.optimizers.Adam(0.05,
                                                                                  clipnorm=0.05),
                                           table_seed=2, initializer_scale=0.3, plan=plan,
                                           vocabulary_size=rows.get("fm"))
        self.hidden = keras.layers.Dense(8, activation="relu",
                                         kernel_initializer=keras.initializers.GlorotUniform(3))
        self.logit = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(4))

    def call(self, features, training=None):
        ids = [features["history"], features["query"], features["ad"]]
        weights = [tf.ones_like(features["history"], tf.float32), features["query_weights"],
                   tf.ones_like(features["ad"], tf.float32)]
        pooled = self.embedding(ids, weights, training=training)
        deep = self.hidden(tf.concat([pooled, features["dense"]], axis=1))
        logits = (self.logit(deep) + self.linear(ids, training=training)
                  + self.fm(ids, weights, training=training))
        return tf.sigmoid(logits)


class StepLogs(keras.callbacks.Callback):
    """Records the loss and AUC after every step (running values over the epoch so far),
    read eagerly with `get_metrics_result()`: global over ranks under DESStrategy (a
    step's own logs are the rank's)."""

    def __init__(self):
        super().__init__()
        self.losses: list[float] = []
        self.aucs: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        results = self.model.get_metrics_result()
        self.losses.append(float(results["loss"]))
        self.aucs.append(float(results["auc"]))


def fit_steps(model: keras.Model, *callbacks: keras.callbacks.Callback) -> "StepLogs":
    """Trains `model` EPOCHS passes over make_batches() (with `callbacks` too); returns
    its per-step logs."""
    history = StepLogs()
    model.fit(make_batches(), epochs=EPOCHS, verbose=0, callbacks=[*callbacks, history],
              shuffle=False)
    return history


def evaluated_state(model: keras.Model, history: "StepLogs") -> dict[str, np.ndarray]:
    """Per-step losses and AUCs, evaluate() loss and AUC, and the dense weights."""
    evaluation = model.evaluate(make_batches(), verbose=0, return_dict=True)
    result = {"losses": np.array(history.losses), "aucs": np.array(history.aucs),
              "eval": np.array([evaluation["loss"], evaluation["auc"]])}
    for i, weight in enumerate(model.hidden.weights + model.logit.weights
                               + [model.linear.bias]):
        result[f"dense_{i}"] = weight.numpy()
    return result


def _table_rows(layer) -> dict[str, np.ndarray]:
    """Every rank's exported rows, gathered and sorted by key."""
    rows = layer.table.export()
    keys = comm.allgather(rows.keys).numpy()
    order = np.argsort(keys)
    return {"keys": keys[order], "values": comm.allgather(rows.values).numpy()[order],
            "slots": comm.allgather(rows.slots).numpy()[order],
            "updates": comm.allgather(rows.metadata[:, 1]).numpy()[order]}


def compiled(strategy: des.DESStrategy, plan: str = "des") -> TinyCTR:
    """TinyCTR built in `strategy`'s scope, compiled as the equivalence runs train it."""
    with strategy.scope():
        model = TinyCTR(plan)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    return model


def trained_state(model: TinyCTR, *callbacks: keras.callbacks.Callback
                  ) -> dict[str, np.ndarray]:
    """evaluated_state after fit_steps, plus every table's rows (all ranks, by key)."""
    result = evaluated_state(model, fit_steps(model, *callbacks))
    for name in TABLES:
        for field, value in _table_rows(getattr(model, name)).items():
            result[f"{name}_{field}"] = value
    return result


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` within the block."""
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def mixed_float16_model(optimizer: type[keras.Optimizer], learning_rate: float,
                        initial_scale: float) -> TinyCTR:
    """TinyCTR under mixed_float16, compiled with des-tf's loss scaling (starting at
    `initial_scale`) around `optimizer(learning_rate)`, made in the strategy's scope."""
    with dtype_policy("mixed_float16"), des.DESStrategy(sharding_seed=5).scope():
        model = TinyCTR()
        model.compile(optimizer=des.optimizers.LossScaleOptimizer(
            optimizer(learning_rate), initial_scale=initial_scale),
            loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    return model


def _train_mixed_float16(out_dir: str) -> None:
    """TinyCTR under mixed_float16 (a scale no step overflows at), saved as the other
    runs, with SGD for the dense weights (see the test comparing them); then a step whose
    loss overflows on the last rank only (float16 features there): every rank must skip
    it, in tables, dense weights and loss scale, and none hang."""
    result = trained_state(mixed_float16_model(keras.optimizers.SGD, 0.05, 2.0**8))
    if comm.rank() == 0:
        np.savez(os.path.join(out_dir, f"mixed_float16_n{comm.size()}.npz"), **result)
    model = mixed_float16_model(keras.optimizers.SGD, 0.05, 2.0**8)
    features, labels = next(iter(make_batches()))
    last_rank_rows = int(model.distribute_strategy.rows_per_rank(GLOBAL_BATCH)[-1])
    overflowing = np.arange(GLOBAL_BATCH) >= GLOBAL_BATCH - last_rank_rows
    features["dense"] = tf.where(overflowing[:, None], 1e6, features["dense"])
    with model.distribute_strategy.scope():
        model(features)  # builds the dense weights
    kernel = model.hidden.kernel.numpy()
    model.fit(tf.data.Dataset.from_tensors((features, labels)), verbose=0)
    skipped = {"table_steps": [int(getattr(model, name).table_step.numpy())
                               for name in TABLES],
               "iterations": int(model.optimizer.iterations.numpy()),
               "scale": float(model.optimizer.dynamic_scale.numpy()),
               "kernel_unchanged": bool((model.hidden.kernel.numpy() == kernel).all())}
    skipped = comm.gather_json(skipped)
    if comm.rank() == 0:
        with open(os.path.join(out_dir, f"mixed_float16_overflow_n{comm.size()}.json"), "w") as f:
            json.dump(skipped, f)


class AllreduceBytes(keras.callbacks.Callback):
    """Bytes this rank sends in all-reduces within each training step (placed before any
    callback that reads metrics at a step's end, which is an all-reduce of its own)."""

    def __init__(self):
        super().__init__()
        self.per_step: list[int] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.per_step.append(-self._sent())

    def on_train_batch_end(self, batch, logs=None):
        self.per_step[-1] += self._sent()

    @staticmethod
    def _sent() -> int:
        return comm.counters().snapshot()["sent"]["allreduce"]


# (comm_dtype, plan) of the 16-bit runs: each plan's exchange of partials in one of them.
REDUCED_COMM_RUNS = (("bfloat16", "des"), ("float16", "alltoall"), ("bfloat16", "replicated"),
                     ("float16", "rows"))


def _train_in_16_bit_comm_dtypes(out_dir: str) -> None:
    """TinyCTR trained as in train_and_save, with partials, their gradients and the dense
    gradients travelling in 16 bits (REDUCED_COMM_RUNS); saved with the dense
    all-reduce's bytes of each step and the number of dense parameters."""
    for comm_dtype, plan in REDUCED_COMM_RUNS:
        model = compiled(des.DESStrategy(sharding_seed=5, comm_dtype=comm_dtype), plan)
        sent = AllreduceBytes()
        result = trained_state(model, sent)
        result["allreduce_per_step"] = np.array(sent.per_step)
        result["dense_params"] = np.array(sum(
            int(np.prod(w.shape)) for w in model.trainable_weights
            if not w.path.endswith("gradient_hook")))
        if comm.rank() == 0:
            np.savez(os.path.join(out_dir, f"{comm_dtype}_{plan}_n{comm.size()}.npz"),
                     **result)


def train_and_save(out_dir: str) -> None:
    """Rank body: trains TinyCTR in each input mode, under mixed_float16 and, on several
    ranks, in each 16-bit comm_dtype, and saves losses, weights and rows."""
    for mode in des.comm.cost.INPUT_MODES:
        model = compiled(des.DESStrategy(input_mode=mode, sharding_seed=5))
        result = trained_state(model)
        for name in TABLES:
            result[f"{name}_local_rows"] = np.array([int(getattr(model, name).table.size())])
        if comm.rank() == 0:
            np.savez(os.path.join(out_dir, f"{mode}_n{comm.size()}.npz"), **result)
        sizes = comm.allgather(tf.constant([int(model.embedding.table.size())], tf.int64))
        keys = comm.allgather(model.embedding.table.export().keys).numpy()
        owners = des.shard_owner(keys, comm.size(), seed=5).numpy()
        ranks = np.repeat(np.arange(comm.size()), sizes.numpy())
        if comm.rank() == 0:
            with open(os.path.join(out_dir, f"{mode}_n{comm.size()}_owners.json"), "w") as f:
                json.dump({"owner_matches_rank": bool((owners == ranks).all()),
                           "distinct": int(len(np.unique(keys))), "total": int(len(keys))}, f)
    _train_mixed_float16(out_dir)
    if comm.size() > 1:
        _train_in_16_bit_comm_dtypes(out_dir)


def train_and_save_default_mode(out_dir: str) -> None:
    """Rank body: trains TinyCTR in the default input mode only and saves what
    train_and_save saves for it (the emulated-cluster test's short run)."""
    result = trained_state(compiled(des.DESStrategy(sharding_seed=5)))
    if comm.rank() == 0:
        np.savez(os.path.join(out_dir, f"default_n{comm.size()}.npz"), **result)


if __name__ == "__main__":
    train_and_save(sys.argv[1])

"""The naive Keras reference for des-tf's step time: what a Keras 3 user writes first.
LR, Wide&Deep or DeepFM with `keras.layers.Embedding` tables of --table_rows hashed rows
(id mod rows, pooled per field by its combiner, as des_tf.models), one Keras optimizer
(Adam at --dense_learning_rate) for every weight, plain `compile` / `fit` with an AUC
metric, in one process on the same reader and global batches as `python -m
des_tf.train`.

  .venv/bin/python bench/keras_baseline.py --model=deepfm --synthetic_rows=20000 \\
      --batch_size=2048 --steps=20 --warmup_steps=4

--batch_size is the global batch here (one process). Prints `step N/STEPS: loss L` every
--log_every steps and one line `KERAS_BASELINE_SUMMARY {json}`: samples/s over the steps
after --warmup_steps, eval AUC and log loss on the held-out lines. bench/compare.py runs
it as its `keras` mode.
"""

import os
import sys
import time
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402

from bench import reference  # noqa: E402
from bench.ps import flags as ps_flags  # noqa: E402
from bench.ps.model import pooling_scale  # noqa: E402
from des_tf.models.features import FeatureSpec  # noqa: E402

FLAGS = ps_flags.FLAGS


class PooledEmbedding(keras.layers.Layer):
    """One keras.layers.Embedding of `rows` rows shared by every id field: each field's
    ids (mod rows) are looked up and pooled per sample by the field's combiner ("sum",
    "mean" or "sqrtn", one per field). Output [batch, fields, dim]."""

    def __init__(self, rows: int, dim: int, initializer, combiners: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.rows, self.combiners = rows, tuple(combiners)
        self.embedding = keras.layers.Embedding(rows, dim, embeddings_initializer=initializer)

    def call(self, fields):
        pooled = []
        for ids, combiner in zip(fields, self.combiners):
            if isinstance(ids, tf.RaggedTensor):
                vectors = tf.ragged.map_flat_values(
                    lambda v: self.embedding(tf.math.floormod(v, self.rows)), ids)
                scale = pooling_scale(ids.row_lengths(), combiner)[:, None]
                pooled.append(tf.reduce_sum(vectors, axis=1) * scale)
            else:
                pooled.append(self.embedding(tf.math.floormod(ids, self.rows)))
        return tf.stack(pooled, axis=1)


class NaiveCTR(keras.Model):
    """des_tf.models' LR / Wide&Deep / DeepFM architectures over Keras embeddings."""

    def __init__(self, kind: str, spec: FeatureSpec, rows: int, dim: int, hidden):
        super().__init__()
        self.kind, self.spec = kind, spec
        self.linear = PooledEmbedding(rows, 1, "zeros", spec.field_combiners)
        self.bias = self.add_weight(shape=(1,), initializer="zeros", name="bias")
        if kind == "lr":
            self.dense_linear = keras.layers.Dense(1, use_bias=False) if spec.dense else None
            return
        self.embedding = PooledEmbedding(rows, dim, keras.initializers.TruncatedNormal(
            stddev=0.05, seed=FLAGS.seed), spec.field_combiners)
        self.mlp = [keras.layers.Dense(units, activation="relu") for units in hidden]
        self.head = keras.layers.Dense(1)

    def call(self, features):
        ids = self.spec.ids(features)
        dense = self.spec.dense_matrix(features)
        logit = tf.reduce_sum(self.linear(ids), axis=[1, 2])[:, None] + self.bias
        if self.kind == "lr":
            return tf.sigmoid(logit if self.dense_linear is None
                              else logit + self.dense_linear(dense))
        fields = self.embedding(ids)
        x = tf.reshape(fields, [-1, fields.shape[1] * fields.shape[2]])
        x = x if dense is None else tf.concat([x, dense], axis=1)
        for layer in self.mlp:
            x = layer(x)
        logit += self.head(x)
        if self.kind == "deepfm":
            logit += 0.5 * (tf.reduce_sum(tf.square(tf.reduce_sum(fields, 1)), 1, keepdims=True)
                            - tf.reduce_sum(tf.square(fields), [1, 2])[:, None])
        return tf.sigmoid(logit)


class _Progress(keras.callbacks.Callback):
    """Prints the progress lines bench/compare.py times, and times the steps after the
    warm-up."""

    def __init__(self):
        super().__init__()
        self.timed_from = self.timed_to = 0.0

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        reference.report_step(done, logs["loss"])
        if done == FLAGS.warmup_steps:
            self.timed_from = time.perf_counter()
        if done == FLAGS.steps:
            self.timed_to = time.perf_counter()


def main(argv: list[str]) -> None:
    del argv
    started = time.perf_counter()
    train_reader, eval_reader, facts = reference.start("keras_baseline")
    batch = FLAGS.batch_size
    model = NaiveCTR(FLAGS.model, train_reader.schema.feature_spec(), FLAGS.table_rows,
                     FLAGS.embedding_dim, ps_flags.hidden())
    model.compile(optimizer=keras.optimizers.Adam(FLAGS.dense_learning_rate),
                  loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    progress = _Progress()
    model.fit(train_reader.dataset(batch, drop_remainder=True).repeat().prefetch(2),
              steps_per_epoch=FLAGS.steps, epochs=1, verbose=0, callbacks=[progress])
    evaluation = reference.evaluate(model.predict_on_batch, eval_reader.dataset(batch))
    reference.print_summary("KERAS_BASELINE_SUMMARY ", "keras", batch,
                            progress.timed_to - progress.timed_from, evaluation, facts, started)


if __name__ == "__main__":
    app.run(main)

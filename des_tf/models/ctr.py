"""CTR models built from des_tf.layers and Keras layers: LR, Wide&Deep, DeepFM, DCN-v2 and
DLRM. Each takes a feature dict (see FeatureSpec) and returns click probabilities
[batch, 1]; build them inside `DESStrategy().scope()`. `plan` ("des", "alltoall",
"replicated", "rows" or "auto") is the execution mode of every DES layer of the model (see
des_tf.layers.DESLayer). Every sparse layer (embedding, linear term) pools each field
with the FeatureSpec's combiner for it (`FeatureSpec.combiners`, "sum" by default)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras
import tensorflow as tf

from des_tf import layers, optimizers
from des_tf.models.blocks import CrossLayer, mlp, pairwise_dots
from des_tf.models.features import FeatureSpec
from des_tf.optimizers import Adagrad, Ftrl, SparseOptimizer


class CTRModel(keras.Model):
    """Base: a FeatureSpec, a logit head, and the sigmoid. Each model records its other
    arguments with `_remember`, so `get_config` / `from_config` (Keras' `model.save` and
    `load_model`) recreate it."""

    def __init__(self, feature_spec: FeatureSpec, **kwargs):
        super().__init__(**kwargs)
        self.feature_spec = feature_spec
        self._arguments: dict = {}

    def _remember(self, **arguments) -> None:
        self._arguments.update(arguments)

    def get_config(self) -> dict:
        arguments = {name: value.get_config() if isinstance(value, SparseOptimizer) else value
                     for name, value in self._arguments.items()}
        return {**super().get_config(), "feature_spec": dataclasses.asdict(self.feature_spec),
                **arguments}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["feature_spec"] = FeatureSpec.from_config(config["feature_spec"])
        for name in config:
            if name.endswith("_optimizer"):
                config[name] = optimizers.deserialize(config[name])
        return cls(**config)

    def call(self, features, training=None):
        return tf.sigmoid(self.logit(features, training))

    def logit(self, features, training) -> tf.Tensor:
        raise NotImplementedError

    def _dense(self, features) -> tf.Tensor | None:
        return self.feature_spec.dense_matrix(features)


@keras.saving.register_keras_serializable(package="des_tf")
class LR(CTRModel):
    """Logistic regression: sparse linear term over the ids + a linear term over the
    dense features."""

    def __init__(self, feature_spec: FeatureSpec,
                 table_optimizer: SparseOptimizer = Ftrl(0.05), plan: str | None = None,
                 **kwargs):
        plan = layers.resolve_plan(plan, kwargs.pop("comm", None))
        super().__init__(feature_spec, **kwargs)
        self._remember(table_optimizer=table_optimizer, plan=plan)
        self.sparse = layers.SparseLinear(combiner=feature_spec.field_combiners,
                                          table_optimizer=table_optimizer, plan=plan)
        self.dense_linear = keras.layers.Dense(1, use_bias=False) if feature_spec.dense else None

    def logit(self, features, training):
        out = self.sparse(self.feature_spec.ids(features), training=training)
        if self.dense_linear is not None:
            out += self.dense_linear(self._dense(features))
        return out


class _EmbeddingModel(CTRModel):
    """Base of the models with one pooled embedding per field (one shared table)."""

    def __init__(self, feature_spec: FeatureSpec, embedding_dim: int,
                 table_optimizer: SparseOptimizer, plan: str | None = None, **kwargs):
        plan = layers.resolve_plan(plan, kwargs.pop("comm", None))
        super().__init__(feature_spec, **kwargs)
        self._remember(embedding_dim=embedding_dim, table_optimizer=table_optimizer, plan=plan)
        self.embedding_dim = embedding_dim
        self.embedding = layers.ShardedEmbedding(
            embedding_dim, combiner=feature_spec.field_combiners, output="stack",
            table_optimizer=table_optimizer,
            initializer="truncated_normal", initializer_scale=0.05, plan=plan)

    def _fields(self, features, training) -> tf.Tensor:
        """Pooled field embeddings [batch, fields, dim]."""
        return self.embedding(self.feature_spec.ids(features), training=training)

    def _deep_inputs(self, fields: tf.Tensor, features) -> tf.Tensor:
        """Concatenated field embeddings and dense features."""
        flat = tf.reshape(fields, [-1, len(self.feature_spec.sparse) * self.embedding_dim])
        dense = self._dense(features)
        return flat if dense is None else tf.concat([flat, dense], axis=1)


@keras.saving.register_keras_serializable(package="des_tf")
class WideDeep(_EmbeddingModel):
    """Wide (sparse linear) + deep (MLP over embeddings and dense features)."""

    def __init__(self, feature_spec: FeatureSpec, embedding_dim: int = 16,
                 hidden: Sequence[int] = (400, 400, 400),
                 table_optimizer: SparseOptimizer = Adagrad(0.05),
                 wide_optimizer: SparseOptimizer = Ftrl(0.05), plan: str | None = None,
                 **kwargs):
        plan = layers.resolve_plan(plan, kwargs.pop("comm", None))
        super().__init__(feature_spec, embedding_dim, table_optimizer, plan, **kwargs)
        self._remember(hidden=list(hidden), wide_optimizer=wide_optimizer)
        self.wide = layers.SparseLinear(combiner=feature_spec.field_combiners,
                                        table_optimizer=wide_optimizer, plan=plan)
        self.deep = mlp(hidden, "deep")
        self.head = keras.layers.Dense(1)

    def logit(self, features, training):
        deep = self.head(self.deep(self._deep_inputs(self._fields(features, training), features)))
        return deep + self.wide(self.feature_spec.ids(features), training=training)


@keras.saving.register_keras_serializable(package="des_tf")
class DeepFM(_EmbeddingModel):
    """First-order sparse linear term + FM second-order term over the field embeddings
    (computed locally from the pooled fields: 1/2 (||sum_f e_f||^2 - sum_f ||e_f||^2)) +
    an MLP over the same embeddings and the dense features."""

    def __init__(self, feature_spec: FeatureSpec, embedding_dim: int = 16,
                 hidden: Sequence[int] = (400, 400, 400),
                 table_optimizer: SparseOptimizer = Adagrad(0.05),
                 linear_optimizer: SparseOptimizer = Ftrl(0.05), plan: str | None = None,
                 **kwargs):
        plan = layers.resolve_plan(plan, kwargs.pop("comm", None))
        super().__init__(feature_spec, embedding_dim, table_optimizer, plan, **kwargs)
        self._remember(hidden=list(hidden), linear_optimizer=linear_optimizer)
        self.linear = layers.SparseLinear(combiner=feature_spec.field_combiners,
                                          table_optimizer=linear_optimizer, plan=plan)
        self.deep = mlp(hidden, "deep")
        self.head = keras.layers.Dense(1)

    def logit(self, features, training):
        fields = self._fields(features, training)
        fm = 0.5 * (tf.reduce_sum(tf.square(tf.reduce_sum(fields, axis=1)), axis=1, keepdims=True)
                    - tf.reduce_sum(tf.square(fields), axis=[1, 2])[:, None])
        return (self.head(self.deep(self._deep_inputs(fields, features))) + fm
                + self.linear(self.feature_spec.ids(features), training=training))


@keras.saving.register_keras_serializable(package="des_tf")
class DCNv2(_EmbeddingModel):
    """DCN-v2 (stacked): `cross_layers` full-rank cross layers over the concatenated
    embeddings and dense features, then an MLP."""

    def __init__(self, feature_spec: FeatureSpec, embedding_dim: int = 16,
                 cross_layers: int = 3, hidden: Sequence[int] = (400, 400),
                 table_optimizer: SparseOptimizer = Adagrad(0.05), plan: str | None = None,
                 **kwargs):
        super().__init__(feature_spec, embedding_dim, table_optimizer, plan, **kwargs)
        self._remember(cross_layers=cross_layers, hidden=list(hidden))
        self.crosses = [CrossLayer(name=f"cross_{i}") for i in range(cross_layers)]
        self.deep = mlp(hidden, "deep")
        self.head = keras.layers.Dense(1)

    def logit(self, features, training):
        x0 = x = self._deep_inputs(self._fields(features, training), features)
        for cross in self.crosses:
            x = cross(x0, x)
        return self.head(self.deep(x))


@keras.saving.register_keras_serializable(package="des_tf")
class DLRM(_EmbeddingModel):
    """DLRM: a bottom MLP maps the dense features to one embedding-sized vector; the
    pairwise dot products of it and the field embeddings, with it, feed the top MLP."""

    def __init__(self, feature_spec: FeatureSpec, embedding_dim: int = 16,
                 bottom: Sequence[int] = (64,), top: Sequence[int] = (256, 128),
                 table_optimizer: SparseOptimizer = Adagrad(0.05), plan: str | None = None,
                 **kwargs):
        if not feature_spec.dense:
            raise ValueError("DLRM needs dense features for its bottom MLP")
        super().__init__(feature_spec, embedding_dim, table_optimizer, plan, **kwargs)
        self._remember(bottom=list(bottom), top=list(top))
        self.bottom = keras.Sequential([mlp(bottom, "bottom_hidden"),
                                        keras.layers.Dense(embedding_dim, activation="relu")],
                                       name="bottom")
        self.top = mlp(top, "top")
        self.head = keras.layers.Dense(1)

    def logit(self, features, training):
        dense = self.bottom(self._dense(features))
        vectors = tf.concat([dense[:, None, :], self._fields(features, training)], axis=1)
        return self.head(self.top(tf.concat([dense, pairwise_dots(vectors)], axis=1)))

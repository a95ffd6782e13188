"""LR, Wide&Deep and DeepFM as parameter-server models: the architectures of
des_tf.models (same layers, widths, initialisers and optimizers, each id field pooled by
its FeatureSpec combiner), written against raw tf.Variables so that every byte a worker
moves is an explicit pull or push.

A worker step: read the batch, map every id to its table row (key mod `rows`),
deduplicate the rows (`tf.unique`), split them by the parameter server holding them,
pull those rows and every dense weight, compute the loss and the gradients with respect
to the pulled values, and push the gradients into the optimizers' apply ops, which run
on the parameter servers next to the variables and their slots (Adagrad for the
embedding table, FTRL for the linear table, Adam for the dense weights). Workers do this
concurrently, without locks (Hogwild), as production PS training does.

Substitutions against des-tf (documented in the README draft): fixed-size tables
(key mod rows) instead of collision-free hash tables; TensorFlow's kernels for the
optimizers (Adagrad adds epsilon outside the square root; FTRL without `beta`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import tensorflow as tf
from tensorflow.python.distribute.sharded_variable import ShardedVariable  # TF is pinned

from des_tf.models.features import FeatureSpec

MODELS = ("lr", "wide_deep", "deepfm")


@dataclasses.dataclass(frozen=True)
class Adagrad:
    """accumulator += g^2; w -= lr * g / (sqrt(accumulator) + epsilon)."""

    learning_rate: float
    initial_accumulator: float = 0.1
    epsilon: float = 1e-7

    def slots(self) -> dict[str, float]:
        return {"accumulator": self.initial_accumulator}

    def apply(self, var, slots, grad, indices):
        return tf.raw_ops.ResourceSparseApplyAdagradV2(
            var=var.handle, accum=slots["accumulator"].handle, lr=self.learning_rate,
            epsilon=self.epsilon, grad=grad, indices=indices, use_locking=False)


@dataclasses.dataclass(frozen=True)
class Ftrl:
    """FTRL-Proximal, learning-rate power -1/2 (TensorFlow's kernel)."""

    learning_rate: float
    initial_accumulator: float = 0.1
    l1: float = 0.0
    l2: float = 0.0

    def slots(self) -> dict[str, float]:
        return {"accumulator": self.initial_accumulator, "linear": 0.0}

    def apply(self, var, slots, grad, indices):
        return tf.raw_ops.ResourceSparseApplyFtrlV2(
            var=var.handle, accum=slots["accumulator"].handle, linear=slots["linear"].handle,
            grad=grad, indices=indices, lr=self.learning_rate, l1=self.l1, l2=self.l2,
            l2_shrinkage=0.0, lr_power=-0.5, use_locking=False)


@dataclasses.dataclass(frozen=True)
class Adam:
    """Keras' Adam (epsilon outside the square root, bias-corrected learning rate)."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7


class RowSplit:
    """Unique row ids split by the shard (parameter server) holding them."""

    def __init__(self, rows: tf.Tensor, offsets: Sequence[int]):
        num_shards = len(offsets) - 1
        if num_shards == 1:
            self.shard = tf.zeros_like(rows, tf.int32)
        else:
            bounds = tf.constant(offsets[1:-1], tf.int64)
            self.shard = tf.cast(tf.searchsorted(bounds, rows, side="right"), tf.int32)
        local = rows - tf.gather(tf.constant(offsets[:-1], tf.int64), self.shard)
        self.num_shards = num_shards
        self.indices = tf.dynamic_partition(local, self.shard, num_shards)
        self.positions = tf.dynamic_partition(tf.range(tf.size(rows)), self.shard, num_shards)


class ShardedTable:
    """A [rows, dim] float32 table created by ParameterServerStrategy's
    variable_partitioner as a ShardedVariable (contiguous row ranges, one per parameter
    server), with its optimizer's slots created next to each shard."""

    def __init__(self, strategy, name: str, rows: int, dim: int, optimizer,
                 stddev: float, seed: int):
        def initial(partition_shape=(rows, dim), partition_offset=(0, 0)):
            if not stddev:
                return tf.zeros(partition_shape)
            return tf.random.stateless_truncated_normal(
                partition_shape, seed=[seed, partition_offset[0]], stddev=stddev)

        self.name, self.rows, self.dim, self.optimizer = name, rows, dim, optimizer
        self.variable = tf.Variable(initial, shape=[rows, dim], dtype=tf.float32, name=name)
        self.shards = (list(self.variable.variables)
                       if isinstance(self.variable, ShardedVariable) else [self.variable])
        sizes = [shard.shape[0] for shard in self.shards]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.slots = []
        for shard in self.shards:
            with strategy.extended.colocate_vars_with(shard):
                self.slots.append({
                    slot: tf.Variable(lambda v=value, s=shard.shape: tf.fill(s, v),
                                      shape=shard.shape, dtype=tf.float32,
                                      name=f"{name}/{slot}", trainable=False)
                    for slot, value in optimizer.slots().items()})

    def devices(self) -> list[str]:
        return [shard.device for shard in self.shards]

    def pull(self, split: RowSplit) -> tf.Tensor:
        """The rows of `split` [unique, dim], read on their parameter servers."""
        parts = [shard.sparse_read(indices)
                 for shard, indices in zip(self.shards, split.indices)]
        return tf.dynamic_stitch(split.positions, parts)

    def push(self, split: RowSplit, grads: tf.Tensor) -> list:
        """Applies the gradients of the pulled rows on their parameter servers."""
        parts = tf.dynamic_partition(grads, split.shard, split.num_shards)
        return [self.optimizer.apply(shard, slots, grad, indices)
                for shard, slots, grad, indices in zip(self.shards, self.slots, parts,
                                                       split.indices)]


class DenseWeights:
    """The dense (non-table) weights, whole variables placed round-robin on the
    parameter servers, each with its Adam slots beside it, and a shared step counter."""

    def __init__(self, strategy, anchors: Sequence, optimizer: Adam):
        self.strategy, self.anchors, self.optimizer = strategy, list(anchors), optimizer
        self.variables, self.slots = [], []
        with strategy.extended.colocate_vars_with(self.anchors[0]):
            self.iterations = tf.Variable(tf.constant(0, tf.int64), name="iterations",
                                          trainable=False)

    def add(self, name: str, shape: Sequence[int], initial) -> int:
        anchor = self.anchors[len(self.variables) % len(self.anchors)]
        with self.strategy.extended.colocate_vars_with(anchor):
            variable = tf.Variable(initial, shape=shape, dtype=tf.float32, name=name)
            slots = [tf.Variable(lambda: tf.zeros(shape), shape=shape, dtype=tf.float32,
                                 name=f"{name}/{slot}", trainable=False) for slot in "mv"]
        self.variables.append(variable)
        self.slots.append(slots)
        return len(self.variables) - 1

    @property
    def count(self) -> int:
        return sum(v.shape.num_elements() for v in self.variables)

    def pull(self) -> list[tf.Tensor]:
        return [v.read_value() for v in self.variables]

    def push(self, grads: Sequence[tf.Tensor]) -> list:
        opt = self.optimizer
        step = tf.cast(self.iterations.assign_add(1), tf.float32)
        beta1_power, beta2_power = opt.beta1 ** step, opt.beta2 ** step
        return [tf.raw_ops.ResourceApplyAdam(
            var=v.handle, m=m.handle, v=s.handle, beta1_power=beta1_power,
            beta2_power=beta2_power, lr=opt.learning_rate, beta1=opt.beta1, beta2=opt.beta2,
            epsilon=opt.epsilon, grad=g, use_locking=False)
            for v, (m, s), g in zip(self.variables, self.slots, grads)]


def _glorot(fan_in: int, fan_out: int, seed: int):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return lambda: tf.random.stateless_uniform([fan_in, fan_out], [seed, 1], -limit, limit)


def _zeros(shape):
    return lambda: tf.zeros(shape)


def pooling_scale(lengths: tf.Tensor, combiner: str) -> tf.Tensor:
    """Per sample, what each of its `lengths` ids of a field is multiplied by so that the
    field's sum pools as `combiner` (des_tf.layers.combiners, unit weights)."""
    if combiner == "sum":
        return tf.ones_like(lengths, tf.float32)
    divisor = tf.cast(tf.maximum(lengths, 1), tf.float32)
    return 1.0 / (divisor if combiner == "mean" else tf.sqrt(divisor))


class PSModel:
    """One of MODELS. Create it inside `strategy.scope()`; `train_step` runs on a worker
    (through ClusterCoordinator.schedule), `predict` anywhere."""

    def __init__(self, strategy, kind: str, feature_spec: FeatureSpec, dense_width: int,
                 rows: int, embedding_dim: int = 16, hidden: Sequence[int] = (400, 400, 400),
                 table_learning_rate: float = 0.05, linear_learning_rate: float = 0.05,
                 dense_learning_rate: float = 0.001, seed: int = 0):
        if kind not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
        self.kind, self.spec, self.rows, self.dim = kind, feature_spec, rows, embedding_dim
        self.num_fields, self.dense_width = len(feature_spec.sparse), dense_width
        self.linear = ShardedTable(strategy, "linear", rows, 1, Ftrl(linear_learning_rate),
                                   stddev=0.0, seed=seed)
        self.tables = [self.linear]
        self.embedding = None
        if kind != "lr":
            self.embedding = ShardedTable(strategy, "embedding", rows, embedding_dim,
                                          Adagrad(table_learning_rate), stddev=0.05,
                                          seed=seed + 1)
            self.tables.append(self.embedding)
        for table in self.tables:  # one RowSplit serves every table: same shards, same PS
            if table.offsets != self.linear.offsets or table.devices() != self.linear.devices():
                raise RuntimeError(f"tables are not sharded alike: {table.name} "
                                   f"{table.offsets} {table.devices()} vs linear "
                                   f"{self.linear.offsets} {self.linear.devices()}")
        self.dense = DenseWeights(strategy, self.linear.shards, Adam(dense_learning_rate))
        self.bias = self.dense.add("linear_bias", [1], _zeros([1]))
        self.dense_kernel = None
        self.mlp = []
        if kind == "lr":
            if dense_width:
                self.dense_kernel = self.dense.add("dense_linear", [dense_width, 1],
                                                   _glorot(dense_width, 1, seed + 2))
            return
        width = self.num_fields * embedding_dim + dense_width
        for i, units in enumerate([*hidden, 1]):
            kernel = self.dense.add(f"dense_{i}/kernel", [width, units],
                                    _glorot(width, units, seed + 3 + i))
            bias = self.dense.add(f"dense_{i}/bias", [units], _zeros([units]))
            self.mlp.append((kernel, bias))
            width = units

    # --- the computation -------------------------------------------------------------

    def _entries(self, features: dict, batch: tf.Tensor):
        """(row ids, segment = sample * fields + field, scale) of every id in the batch;
        scale [ids, 1] turns the segment sums into the field's combiner's pooling (1 for
        "sum" and one-id fields, 1/n for "mean", 1/sqrt(n) for "sqrtn" of n ids)."""
        rows, segments, scales = [], [], []
        for f, (ids, combiner) in enumerate(zip(self.spec.ids(features),
                                                self.spec.field_combiners)):
            if isinstance(ids, tf.RaggedTensor):
                values, samples = ids.values, ids.value_rowids()
                scales.append(tf.gather(pooling_scale(ids.row_lengths(), combiner), samples))
            else:
                values, samples = ids, tf.range(batch, dtype=tf.int64)
                scales.append(tf.ones_like(values, tf.float32))
            rows.append(tf.math.floormod(values, self.rows))
            segments.append(samples * self.num_fields + f)
        return tf.concat(rows, 0), tf.concat(segments, 0), tf.concat(scales, 0)[:, None]

    def _logit(self, features, batch, index, segments, scale, pulled, dense):
        """Logits [batch, 1] from the pulled unique rows and dense weights."""
        linear_rows = pulled[0]
        samples = segments // self.num_fields
        logit = tf.math.unsorted_segment_sum(tf.gather(linear_rows, index) * scale, samples,
                                             batch)
        logit += dense[self.bias]
        dense_inputs = self.spec.dense_matrix(features)
        if self.kind == "lr":
            if self.dense_kernel is not None:
                logit += tf.matmul(dense_inputs, dense[self.dense_kernel])
            return logit
        fields = tf.reshape(
            tf.math.unsorted_segment_sum(tf.gather(pulled[1], index) * scale, segments,
                                         batch * self.num_fields),
            [-1, self.num_fields, self.dim])
        x = tf.reshape(fields, [-1, self.num_fields * self.dim])
        if dense_inputs is not None:
            x = tf.concat([x, dense_inputs], axis=1)
        for i, (kernel, bias) in enumerate(self.mlp):
            x = tf.matmul(x, dense[kernel]) + dense[bias]
            if i < len(self.mlp) - 1:
                x = tf.nn.relu(x)
        logit += x
        if self.kind == "deepfm":
            logit += 0.5 * (tf.reduce_sum(tf.square(tf.reduce_sum(fields, 1)), 1, keepdims=True)
                            - tf.reduce_sum(tf.square(fields), [1, 2])[:, None])
        return logit

    def _pull(self, features):
        batch = tf.shape(next(iter(features.values())))[0]
        if isinstance(next(iter(features.values())), tf.RaggedTensor):
            batch = next(iter(features.values())).nrows(out_type=tf.int32)
        rows, segments, scale = self._entries(features, batch)
        unique, index = tf.unique(rows)
        split = RowSplit(unique, self.linear.offsets)
        pulled = [table.pull(split) for table in self.tables]
        return batch, index, segments, scale, unique, split, pulled, self.dense.pull()

    def train_step(self, features: dict, labels: tf.Tensor):
        """One asynchronous worker step; returns (mean loss, unique rows touched)."""
        batch, index, segments, scale, unique, split, pulled, dense = self._pull(features)
        with tf.GradientTape() as tape:
            tape.watch(pulled + dense)
            logit = self._logit(features, batch, index, tf.cast(segments, tf.int32), scale,
                                pulled, dense)
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                tf.reshape(tf.cast(labels, tf.float32), [-1, 1]), logit))
        grads = tape.gradient(loss, pulled + dense)
        updates = []
        for table, grad in zip(self.tables, grads[:len(self.tables)]):
            updates += table.push(split, tf.convert_to_tensor(grad))
        updates += self.dense.push([tf.convert_to_tensor(g) for g in grads[len(self.tables):]])
        with tf.control_dependencies(updates):
            return tf.identity(loss), tf.size(unique)

    def predict(self, features: dict) -> tf.Tensor:
        """Click probabilities [batch]."""
        batch, index, segments, scale, _, _, pulled, dense = self._pull(features)
        return tf.sigmoid(self._logit(features, batch, index, tf.cast(segments, tf.int32),
                                      scale, pulled, dense))[:, 0]

    # --- the analytical PS traffic ---------------------------------------------------

    def payload_bytes(self, unique_rows: float) -> dict[str, float]:
        """Bytes one worker step moves between the worker and the parameter servers, each
        byte counted once, for `unique_rows` distinct rows: the row ids (int64, sent once
        to the server holding them; every table there reuses them), the rows pulled and
        their gradients pushed (float32, every table), every dense weight pulled and its
        gradient pushed."""
        widths = sum(table.dim for table in self.tables)
        return {"ids": 8.0 * unique_rows,
                "rows_pulled": 4.0 * widths * unique_rows,
                "row_grads_pushed": 4.0 * widths * unique_rows,
                "dense_pulled": 4.0 * self.dense.count,
                "dense_grads_pushed": 4.0 * self.dense.count}

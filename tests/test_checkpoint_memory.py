"""Memory bounds (issue 7 item 6): a table with a row budget stays within it under a
stream of 10x more distinct keys, and the per-rank table report counts rows and bytes,
in its own lines and after Keras' summary in `des_tf.summary`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des

BUDGET = 2000


class BudgetModel(keras.Model):
    """A pooled embedding and an LR term, both with a row budget."""

    def __init__(self):
        super().__init__()
        self.embedding = des.layers.ShardedEmbedding(4, output="concat", row_budget=BUDGET,
                                                     table_optimizer=des.optimizers.Adagrad(0.1))
        self.linear = des.layers.SparseLinear(row_budget=BUDGET)
        self.head = keras.layers.Dense(1)

    def call(self, ids, training=None):
        return tf.sigmoid(self.head(self.embedding(ids, training=training))
                          + self.linear(ids, training=training))


def test_row_budget_holds_under_a_stream_of_new_keys():
    with des.DESStrategy().scope():
        model = BudgetModel()
        model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    steps, batch, ids_per_sample = 40, 512, 2  # 40 * 512 new keys > 10x the budget
    ids = np.arange(steps * batch * ids_per_sample, dtype=np.int64).reshape(-1, ids_per_sample)
    ids[:, 1] = rng.integers(0, 8, len(ids)) + 10**9  # a few hot keys seen every step
    labels = (ids[:, 1] % 2).astype(np.float32)[:, None]
    sizes, memory = [], []
    for step in range(steps):
        rows = slice(step * batch, (step + 1) * batch)
        model.train_on_batch(tf.RaggedTensor.from_tensor(ids[rows]), labels[rows])
        sizes.append([int(model.embedding.table.size()), int(model.linear.table.size())])
        memory.append(int(model.embedding.table.memory_bytes()))
    distinct = len(np.unique(ids))
    assert distinct >= 10 * BUDGET
    assert max(max(s) for s in sizes) <= BUDGET, sizes
    # Bytes level off once at the budget (stripes keep their largest block count) and
    # stay well below what the same table holding every key needs.
    assert memory[-1] <= 1.25 * memory[steps // 4], memory
    unbounded = des.tables.DynamicTable(4, optimizer=des.optimizers.Adagrad(0.1))
    unbounded.lookup(np.unique(ids))
    assert memory[-1] < 0.5 * int(unbounded.memory_bytes()), (memory[-1],
                                                              int(unbounded.memory_bytes()))
    hot = model.embedding.table.find_rows(np.arange(8) + 10**9)[1].numpy()
    assert hot.all()  # frequently looked-up keys survive eviction
    report = des.tables.table_report(model)
    assert [r["rows"] for r in report] == [[BUDGET], [BUDGET]]
    assert all(r["bytes"][0] > 0 for r in report)
    text = des.tables.format_table_report(report)
    assert (f"table_0_ShardedEmbedding ({model.embedding.name}, dim 4): {BUDGET:,} rows"
            in text)
    summary = des.summary(model, print_fn=None)  # Keras' summary, then the tables' bytes
    assert summary.index("Total params") < summary.index(text) and summary.endswith(text)


def test_negative_row_budget_is_rejected():
    with des.DESStrategy().scope(), pytest.raises(ValueError, match="row_budget"):
        des.layers.SparseLinear(row_budget=-1)

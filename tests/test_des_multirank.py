"""DES under horovodrun beyond equivalence: byte counters against the analytical count,
ranks with mismatched batches all failing with the same clear error, and metrics made
global only where read (des_tf.strategy), with Keras itself unpatched."""

import time

import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import comm
from des_tf.comm import cost
from tests.horovod_harness import RankFailure, run_ranks

SAMPLES_PER_RANK = 5


def _rank_lists(rank: int) -> list[list[int]]:
    """Rank r's samples: on rank 0 sample s holds s ids, at most 3 distinct (few repeats:
    its raw ids travel); on rank r > 0, s + 3r ids, at most 2 distinct (deduplicated)."""
    length, distinct = (lambda s: s, 3) if rank == 0 else (lambda s: s + 3 * rank, 2)
    return [[7 * s + rank + j % distinct for j in range(length(s))]
            for s in range(SAMPLES_PER_RANK)]


def _rank_ids(rank: int) -> tf.RaggedTensor:
    return tf.ragged.constant(_rank_lists(rank), dtype=tf.int64)


def _allgathered_id_bytes(rank: int) -> int:
    """Bytes of rank r's id block in allgather mode: its distinct ids (int64) and an int32
    inverse index per occurrence when that is smaller (2 U < E), else its raw ids."""
    every = [i for ids in _rank_lists(rank) for i in ids]
    unique, entries = len(set(every)), len(every)
    return 8 * unique + 4 * entries if 2 * unique < entries else 8 * entries


def _check_byte_counters() -> None:
    """Rank body: one SparseLinear training step in allgather mode, counted exactly, in
    each comm_dtype: the partials and their gradients take its bytes, the ids do not."""
    for comm_dtype, float_bytes in (("float32", 4), ("bfloat16", 2), ("float16", 2)):
        _count_one_step(comm_dtype, float_bytes)


def _count_one_step(comm_dtype: str, float_bytes: int) -> None:
    strategy = des.DESStrategy(input_mode="allgather_ids", comm_dtype=comm_dtype)
    size, rank = strategy.size, strategy.rank
    with strategy.scope():
        layer = des.layers.SparseLinear()
    ids = _rank_ids(rank)
    comm.counters().reset()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(ids, training=True))
    tape.gradient(loss, layer.gradient_hook)
    counted = comm.counters().snapshot()

    id_bytes = [_allgathered_id_bytes(r) for r in range(size)]
    assert id_bytes[0] == 8 * 10 and id_bytes[1] == 8 * 10 + 4 * 25  # both encodings occur
    segments, width = SAMPLES_PER_RANK, 1  # one LR partial (1 float) per sample
    peers = size - 1
    partials = float_bytes * segments * width * peers
    expected_sent = {
        # (samples, fields, ids sent) check (3 int32), ids (see _allgathered_id_bytes),
        # row lengths (int32), then the backward allgather of the partials' gradients
        "allgather": 12 * peers + id_bytes[rank] * peers + 4 * segments * peers + partials,
        # every other rank's block of summed partials
        "reduce_scatter": partials,
    }
    expected_received = {
        "allgather": 12 * peers + sum(id_bytes) - id_bytes[rank] + 4 * segments * peers
                     + partials,
        "reduce_scatter": partials,
    }
    for kind in ("allgather", "reduce_scatter"):
        assert counted["sent"][kind] == expected_sent[kind], (comm_dtype, kind, counted)
        assert counted["received"][kind] == expected_received[kind], (comm_dtype, kind)
    assert counted["sent"]["alltoall"] == counted["sent"]["allreduce"] == 0
    # The cost model's "des" partials (docs/design.md section 3.6) are what was counted.
    op = cost.Operator("linear", (cost.Field(1.0, 1.0),))
    cfg = cost.Config(segments, size, (op,),
                      conventions=cost.Conventions(wire_float_bytes=float_bytes))
    flows = {f.part: f for f in cost.PLAN_FLOWS["des"](op, cfg, "linear")}
    assert flows["forward"].sent == counted["sent"]["reduce_scatter"]
    assert flows["backward"].sent == partials  # the gradients' allgather


def _check_ranks_owning_no_id_of_the_batch() -> None:
    """Rank body: every id of the batch is key 7, so all but one rank own nothing in it;
    some samples are empty. Forward and backward must still be exact everywhere."""
    strategy = des.DESStrategy(input_mode="alltoall_ids")
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(
            2, initializer="constant", initializer_scale=0.5,
            table_optimizer=des.optimizers.SGD(0.1))
    counts = [strategy.rank % 2, 2, 0]  # ids per sample on this rank
    ids = tf.ragged.constant([[7] * n for n in counts], dtype=tf.int64)
    with tf.GradientTape() as tape:
        pooled = layer(ids, training=True)
        loss = tf.reduce_sum(pooled)
    tape.gradient(loss, layer.gradient_hook)
    np.testing.assert_allclose(pooled.numpy()[:, 0, :], [[0.5 * n] * 2 for n in counts])
    rows = comm.allgather(layer.table.export().values).numpy()
    occurrences = sum(r % 2 + 2 for r in range(strategy.size))
    np.testing.assert_allclose(rows, [[0.5 - 0.1 * occurrences] * 2])  # one row, on its owner


def _check_mismatched_batches_fail_everywhere() -> None:
    """Rank body: rank r feeds 4 + 3r samples; every rank must get the same clear error."""
    strategy = des.DESStrategy()
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(2)
    ids = tf.ragged.constant([[1, 2]] * (4 + 3 * strategy.rank), dtype=tf.int64)
    try:
        layer(ids, training=True)
    except tf.errors.InvalidArgumentError as error:
        assert "ranks hold different batch sizes" in str(error)
        print(f"rank {strategy.rank}: mismatch reported", flush=True)
    else:
        raise AssertionError("mismatched batch sizes were not reported")


def _check_mismatched_fields_fail_everywhere() -> None:
    """Rank body: rank 1 feeds two fields where rank 0 feeds one."""
    strategy = des.DESStrategy(input_mode="alltoall_ids")
    with strategy.scope():
        layer = des.layers.ShardedEmbedding(2)
    field = tf.ragged.constant([[1, 2], [3]], dtype=tf.int64)
    try:
        layer([field] * (1 + strategy.rank), training=True)
    except tf.errors.InvalidArgumentError as error:
        assert "different numbers of fields" in str(error)
        print(f"rank {strategy.rank}: field mismatch reported", flush=True)
    else:
        raise AssertionError("mismatched fields were not reported")


def _rank1_raises_during_fit() -> None:
    """Rank body: rank 1 raises in the middle of model.fit; rank 0 is left waiting in a
    collective of the next step."""
    import keras

    from tests.des_model import TinyCTR, make_batches

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2 and comm.rank() == 1:
                raise RuntimeError("rank 1 failed mid-training on purpose")

    strategy = des.DESStrategy(collective_timeout_s=20)
    with strategy.scope():
        model = TinyCTR()
        model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(make_batches(), epochs=1, verbose=0, callbacks=[Boom()])


def _check_dense_weights_start_from_rank_0() -> None:
    """Rank body: a layer whose initialiser draws differently per rank still starts equal."""
    strategy = des.DESStrategy()
    with strategy.scope():
        import keras
        dense = keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(
            seed=strategy.rank))
        dense.build((None, 4))
    kernels = comm.allgather(dense.kernel.value[None]).numpy()
    np.testing.assert_array_equal(kernels[0], kernels[-1])


def _check_metrics_summed_only_where_read() -> None:
    """Rank body: Keras is not patched; metric states are summed over ranks only where
    read outside the step: eager `get_metrics_result()` calls and epoch ends give the same
    global numbers on every rank, a step's own logs are the rank's, and fit spends no
    allreduce on metrics in the steps nobody reads them. Only rank 0 logs interactively.
    Then predict_global returns every sample's prediction in the data's order."""
    import keras
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer
    from keras.src.trainers.trainer import Trainer

    from tests.des_model import (
        EPOCHS,
        GLOBAL_BATCH,
        STEPS,
        STEPS_PER_EPOCH,
        StepLogs,
        TinyCTR,
        make_batches,
    )

    def sent() -> int:
        return comm.counters().snapshot()["sent"]["allreduce"]

    class OwnStepLogs(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses, self.allreduce_sent = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.losses.append(float(logs["loss"]))
            self.allreduce_sent.append(sent())

    runs = {}
    for read_every_step in (True, False):
        strategy = des.DESStrategy(sharding_seed=5)
        with strategy.scope():
            model = TinyCTR()
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                          metrics=[keras.metrics.AUC(name="auc")])
        steps = StepLogs() if read_every_step else OwnStepLogs()
        before_fit = sent()
        history = model.fit(make_batches(), epochs=EPOCHS, verbose=0, callbacks=[steps],
                            shuffle=False)
        after_fit = sent()
        model.get_metrics_result()  # eager: one sum of the metric states
        sync_bytes = sent() - after_fit  # read before evaluate() sums them again
        runs[read_every_step] = {
            "epochs": history.history, "fit_bytes": after_fit - before_fit,
            "step_losses": comm.allgather(tf.constant([steps.losses])).numpy(),
            "allreduce_sent": getattr(steps, "allreduce_sent", None),
            "sync_bytes": sync_bytes,
            "eval": model.evaluate(make_batches(), verbose=0, return_dict=True)}
    assert keras.Model.fit is TensorFlowTrainer.fit
    assert keras.Model.get_metrics_result is Trainer.get_metrics_result
    assert keras.config.is_interactive_logging_enabled() == (comm.rank() == 0)
    # The last model's predictions of the global batches, gathered in the data's order:
    # each batch's slice of this rank is what the rank predicts alone.
    everywhere = des.predict_global(model, make_batches())
    on_rank0 = des.predict_global(model, make_batches(), on="rank0")
    assert everywhere.shape == (STEPS_PER_EPOCH * GLOBAL_BATCH, 1)
    assert (on_rank0 is None) == (comm.rank() != 0)
    if on_rank0 is not None:
        np.testing.assert_array_equal(on_rank0, everywhere)
    np.testing.assert_array_equal(comm.allgather(tf.constant(everywhere)).numpy(),
                                  np.tile(everywhere, (comm.size(), 1)))
    strategy = model.distribute_strategy
    for b, (features, _) in enumerate(strategy.slice_dataset(make_batches())):
        start, count = (int(x) for x in strategy.local_rows(GLOBAL_BATCH))
        np.testing.assert_allclose(everywhere[b * GLOBAL_BATCH + start:][:count],
                                   model.predict_on_batch(features), rtol=1e-6)
    read, unread = runs[True], runs[False]
    for key in ("loss", "auc"):
        np.testing.assert_allclose(unread["epochs"][key], read["epochs"][key], rtol=1e-6)
        np.testing.assert_allclose(unread["eval"][key], read["eval"][key], rtol=1e-6)
    np.testing.assert_array_equal(read["step_losses"][0], read["step_losses"][-1])  # global
    assert not np.allclose(unread["step_losses"][0], unread["step_losses"][-1])  # own
    assert read["sync_bytes"] == unread["sync_bytes"] > 0
    # Both sum the states at each epoch's end; only the reading run in each of the STEPS.
    assert read["fit_bytes"] - unread["fit_bytes"] == STEPS * read["sync_bytes"]
    # Each step all-reduces the dense gradients and the one clipnorm table's float32 norm,
    # nothing else: the DES layers' hooks are assigned their zero gradient on each rank (an
    # all-reduce of them was a round of its own after the table update).
    n = comm.size()
    dense = [w for w in model.trainable_weights if not w.path.endswith("gradient_hook")]
    assert len(dense) < len(model.trainable_weights)
    # Over the mesh, the dense gradients as one tensor, then the norm: each in one round on
    # 2 ranks (its float32 values once), else a reduce-scatter + allgather padded to n.
    def allreduce_bytes(values):
        return values * 4 if n == 2 else 2 * (n - 1) * -(-values // n) * 4
    ring = allreduce_bytes(sum(int(np.prod(w.shape)) for w in dense)) + allreduce_bytes(1)
    per_step = np.diff(unread["allreduce_sent"][:STEPS_PER_EPOCH])
    np.testing.assert_array_equal(per_step, ring)

def test_byte_counters_equal_the_analytical_count():
    for num_ranks in (2, 3):
        run_ranks(num_ranks, _check_byte_counters)


def test_metrics_are_summed_over_ranks_only_where_read_and_predictions_gather_in_order():
    run_ranks(2, _check_metrics_summed_only_where_read)


def test_ranks_owning_no_id_of_the_batch_and_empty_samples():
    run_ranks(3, _check_ranks_owning_no_id_of_the_batch)


def test_mismatched_batch_sizes_fail_on_every_rank():
    output = run_ranks(3, _check_mismatched_batches_fail_everywhere)
    for rank in range(3):
        assert f"rank {rank}: mismatch reported" in output


def test_mismatched_fields_fail_on_every_rank():
    output = run_ranks(2, _check_mismatched_fields_fail_everywhere)
    for rank in range(2):
        assert f"rank {rank}: field mismatch reported" in output


def test_rank_raising_mid_training_ends_the_job_with_its_error():
    start = time.monotonic()
    with pytest.raises(RankFailure, match="failed with exit code") as failure:
        run_ranks(2, _rank1_raises_during_fit, timeout_s=180)
    assert "rank 1 failed mid-training on purpose" in str(failure.value)
    assert time.monotonic() - start < 120


def test_dense_weights_start_equal_on_every_rank():
    run_ranks(2, _check_dense_weights_start_from_rank_0)

"""The cost model (des_tf.comm.cost) against the byte counters of real training steps.

Each rank trains small DES models with Keras `fit` (a DeepFM-like model built from
des_tf.layers, and des_tf.models.LR) on one-hot and multi-hot fields, in several input
modes, counts its bytes per step and collective kind with des_tf.comm.counters(),
derives the model's inputs (ids and distinct ids per sample, unique-id ratio, dense
parameters, metric state) from the very batches it trained on, and checks the model
within 10% for the total and every kind that carries at least 5% of the bytes.

Plans "alltoall" (sparse aggregation), "replicated" and "rows" of ShardedEmbedding are
checked the same way. The DeepFM-like model's SparseLinear reads the same id tensors
as its ShardedEmbedding, after it, so it reuses the embedding's id exchange
(Operator.ids_from) unless the embedding's plan moves no ids ("replicated", "rows"); with
both under "rows", it reuses the embedding's key request.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf import comm
from des_tf.comm import cost
from tests.horovod_harness import REPO_ROOT, run_ranks

SAMPLES_PER_RANK = 48
STEPS = 4
SKIPPED_STEPS = 2  # the first steps trace and create (broadcast) optimizer slots
ONE_HOT = (("c0", 30), ("c1", 400), ("c2", 5000))  # (name, vocabulary)
MULTI_HOT = (("h0", 12.0, 3000), ("h1", 4.0, 200))  # (name, mean length, vocabulary)
SPARSE = tuple(n for n, _ in ONE_HOT) + tuple(n for n, _, _ in MULTI_HOT)
DIM = 4
TOLERANCE = 0.10
MAJOR_SHARE = 0.05
RESULT_MARKER = "COST_MODEL_CHECK"


def _zipf(rng, vocabulary, size):
    return np.minimum(rng.zipf(1.3, size) - 1, vocabulary - 1)


def _global_batches(size: int, seed: int = 0) -> list[dict]:
    """STEPS global batches of size * SAMPLES_PER_RANK samples (ids salted per field)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(STEPS):
        rows = size * SAMPLES_PER_RANK
        features = {}
        for f, (name, vocabulary) in enumerate(ONE_HOT):
            features[name] = [[int(i) * 8 + f] for i in _zipf(rng, vocabulary, rows)]
        for f, (name, mean, vocabulary) in enumerate(MULTI_HOT, len(ONE_HOT)):
            features[name] = [(_zipf(rng, vocabulary, n) * 8 + f).tolist()
                              for n in rng.poisson(mean, rows)]
        features["dense"] = rng.normal(size=(rows, 2)).astype(np.float32)
        features["label"] = (rng.random((rows, 1)) < 0.3).astype(np.float32)
        batches.append(features)
    return batches


def _dataset(batches: list[dict]) -> tf.data.Dataset:
    def gen():
        for b in batches:
            x = {n: tf.ragged.constant(b[n], dtype=tf.int64, row_splits_dtype=tf.int64)
                 for n in SPARSE}
            x["dense"] = tf.constant(b["dense"])
            yield x, tf.constant(b["label"])

    first = next(iter(gen()))
    spec = tf.nest.map_structure(tf.type_spec_from_value, first)
    return tf.data.Dataset.from_generator(gen, output_signature=spec)


def _fields_and_unique(batches: list[dict], size: int) -> tuple[list[cost.Field], float]:
    """Per field mean ids and distinct ids per sample, and the unique-id ratio of one
    rank's batch over all fields (one table), from the measured steps of every rank."""
    measured = batches[SKIPPED_STEPS:]
    fields = []
    for name in SPARSE:
        lists = [ids for b in measured for ids in b[name]]
        fields.append(cost.Field(float(np.mean([len(x) for x in lists])),
                                 float(np.mean([len(set(x)) for x in lists]))))
    unique, occurrences = 0, 0
    for b in measured:
        for r in range(size):
            cut = slice(r * SAMPLES_PER_RANK, (r + 1) * SAMPLES_PER_RANK)
            ids = [i for name in SPARSE for x in b[name][cut] for i in x]
            unique, occurrences = unique + len(set(ids)), occurrences + len(ids)
    return fields, unique / occurrences


class DeepFMLike(keras.Model):
    """DeepFM as des_tf.models.DeepFM builds it (pooled fields -> FM + MLP, plus a
    SparseLinear term), with the embedding's execution mode as a parameter."""

    def __init__(self, embedding_comm: str = "des", linear_comm: str = "des"):
        super().__init__()
        self.embedding = des.layers.ShardedEmbedding(
            DIM, output="stack", table_optimizer=des.optimizers.Adagrad(0.05),
            plan=embedding_comm)
        self.linear = des.layers.SparseLinear(table_optimizer=des.optimizers.Ftrl(0.05),
                                              plan=linear_comm)
        self.deep = keras.Sequential([keras.layers.Dense(16, activation="relu"),
                                      keras.layers.Dense(1)])

    def call(self, x, training=None):
        ids = [x[n] for n in SPARSE]
        fields = self.embedding(ids, training=training)
        fm = 0.5 * (tf.reduce_sum(tf.square(tf.reduce_sum(fields, 1)), 1, keepdims=True)
                    - tf.reduce_sum(tf.square(fields), [1, 2])[:, None])
        deep_in = tf.concat([tf.reshape(fields, [-1, len(SPARSE) * DIM]), x["dense"]], 1)
        return tf.sigmoid(self.deep(deep_in) + fm + self.linear(ids, training=training))


class _PerStep(keras.callbacks.Callback):
    """Counter deltas of each training step."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_begin(self, batch, logs=None):
        self._before = comm.counters().snapshot()

    def on_train_batch_end(self, batch, logs=None):
        after = comm.counters().snapshot()
        self.steps.append({d: {k: after[d][k] - self._before[d][k] for k in after[d]}
                           for d in after})


def _build(model_name: str, embedding_comm: str, linear_comm: str
           ) -> tuple[keras.Model, list[str]]:
    if model_name == "lr":
        return des.models.LR(des.models.FeatureSpec(SPARSE, ("dense",))), ["linear"]
    return DeepFMLike(embedding_comm, linear_comm), ["embedding", "linear"]


def _modeled(model: keras.Model, model_name: str, embedding_comm: str, linear_comm: str,
             input_mode: str, batches: list[dict]) -> cost.Traffic:
    size = comm.size()
    fields, unique_ratio = _fields_and_unique(batches, size)
    ops = cost.model_operators("deepfm" if model_name == "deepfm" else "lr", fields, dim=DIM,
                               unique_ratio=unique_ratio)
    dense = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # Metric states are summed only where read outside a step; this fit reads none.
    cfg = cost.Config(SAMPLES_PER_RANK, size, ops, dense_params=dense, metric_floats=0,
                      input_mode=input_mode)
    return cost.step_traffic(cfg, {"embedding": embedding_comm, "linear": linear_comm})


def _check(model_name: str, input_mode: str, embedding_comm: str = "des",
           linear_comm: str = "des") -> dict:
    size = comm.size()
    batches = _global_batches(size, seed=len(model_name) + 7 * size)
    strategy = des.DESStrategy(input_mode=input_mode)
    with strategy.scope():
        model, _ = _build(model_name, embedding_comm, linear_comm)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    steps = _PerStep()
    model.fit(strategy.distribute_dataset(_dataset(batches)), epochs=1, verbose=0,
              callbacks=[steps])
    kept = steps.steps[SKIPPED_STEPS:]
    # Averaged over ranks: hashing sends a hot id's occurrences to one owner, so single
    # ranks deviate from the uniform-hashing expectation the model gives for the mean.
    keys = [(d, k) for d in ("sent", "received") for k in comm.accounting.KINDS]
    mine = tf.constant([[np.mean([s[d][k] for s in kept]) for d, k in keys]], tf.float64)
    per_rank = comm.allgather(mine).numpy()
    measured = {d: {} for d in ("sent", "received")}
    for (d, k), value in zip(keys, per_rank.mean(axis=0)):
        measured[d][k] = float(value)
    modeled = _modeled(model, model_name, embedding_comm, linear_comm, input_mode, batches)
    modeled_kinds = {"sent": modeled.by_kind("sent"), "received": modeled.by_kind("received")}
    report = {"ranks": size, "model": model_name, "input_mode": input_mode,
              "embedding_comm": embedding_comm, "linear_comm": linear_comm,
              "measured": measured,
              "modeled": modeled_kinds, "modeled_by_part": modeled.by_part("sent"),
              "measured_sent_per_rank": per_rank[:, :len(keys) // 2].sum(axis=1).tolist()}
    if comm.rank() == 0:
        print(f"{RESULT_MARKER} {json.dumps(report)}", flush=True)
    errors = []
    for direction in ("sent", "received"):
        total_measured = sum(measured[direction].values())
        total_modeled = sum(modeled_kinds[direction].values())
        pairs = [("total", total_measured, total_modeled)]
        pairs += [(k, measured[direction].get(k, 0.0), modeled_kinds[direction].get(k, 0.0))
                  for k in set(measured[direction]) | set(modeled_kinds[direction])]
        for kind, got, want in pairs:
            major = max(got, want) >= MAJOR_SHARE * total_measured
            if major and abs(want - got) > TOLERANCE * got:
                errors.append(f"{direction} {kind}: modeled {want:.0f} vs measured {got:.0f}")
    if errors:
        raise AssertionError(f"rank {comm.rank()} {model_name}/{input_mode}/{embedding_comm}/"
                             f"{linear_comm}: "
                             + "; ".join(errors))
    return report


def check_cases(*cases: str) -> None:
    """Rank body: each case is "model:input_mode[:embedding_comm[:linear_comm]]"."""
    for case in cases:
        _check(*case.split(":"))


def _reports(output: str) -> list[dict]:
    """The rank-0 reports of a run, printed as a table (visible with pytest -s)."""
    reports = [json.loads(line.split(RESULT_MARKER, 1)[1]) for line in output.splitlines()
               if RESULT_MARKER in line]
    for r in reports:
        sent, modeled = r["measured"]["sent"], r["modeled"]["sent"]
        kinds = ", ".join(f"{k} {modeled.get(k, 0):.0f}/{v:.0f}" for k, v in sent.items()
                          if v or modeled.get(k))
        print(f"N={r['ranks']} {r['model']} input={r['input_mode']} "
              f"embedding={r['embedding_comm']} linear={r['linear_comm']}: sent per step "
              f"modeled/measured: total "
              f"{sum(modeled.values()):.0f}/{sum(sent.values()):.0f} ({kinds})")
    return reports


def test_cost_model_matches_counters_on_two_ranks():
    output = run_ranks(2, check_cases, args=["deepfm:allgather_ids", "lr:replicated_ids"],
                       timeout_s=240)
    assert len(_reports(output)) == 2


def test_cost_model_matches_counters_on_three_ranks():
    output = run_ranks(3, check_cases, args=["deepfm:alltoall_ids", "lr:allgather_ids"],
                       timeout_s=240)
    assert len(_reports(output)) == 2


def test_cost_model_matches_counters_for_embedding_plans():
    for size in (2, 3):  # one launch each, every plan but "des" (tested above) in it, and
        # the linear term sharing the embedding's key request under "rows"
        output = run_ranks(size, check_cases, args=[
            *(f"deepfm:alltoall_ids:{plan}" for plan in ("alltoall", "replicated", "rows")),
            "deepfm:alltoall_ids:rows:rows"], timeout_s=300)
        assert len(_reports(output)) == 4


# ------------------------------------------------------- the model itself (no ranks)


def _one_table(kind="embedding", fields=(cost.Field(),) * 4, dim=8, **kwargs):
    return cost.Operator(kind, tuple(fields), 1 if kind == "linear" else dim, **kwargs)


def test_dense_partials_follow_the_design_formula():
    op = _one_table(unique_ratio=0.5)
    for n in (2, 3, 64):
        traffic = cost.operator_traffic(op, "des", cost.Config(100, n, (op,)))
        parts = traffic.by_part("sent")
        # docs/design.md section 3.6: 2 (N-1)/N * N*B * width * 4 bytes of partials per step
        assert parts["forward"] + parts["backward"] == pytest.approx(
            2 * (n - 1) / n * n * 100 * 4 * 8 * 4)


def test_one_hot_sparse_aggregation_is_the_alltoall_of_pooled_embeddings():
    op = _one_table()
    cfg = cost.Config(100, 8, (op,), input_mode="replicated_ids")
    forward = cost.operator_traffic(op, "alltoall", cfg).by_part("sent")["forward"]
    assert forward == pytest.approx(7 / 8 * 100 * 4 * (8 * 4 + 4))  # int32 index


def test_a_16_bit_comm_dtype_halves_the_floats_between_ranks_only():
    """wire_float_bytes=2 (bfloat16 / float16): partials, their gradients, replicated row
    gradients and dense gradients halve; ids, indices, keys, metrics and the PS stay."""
    op = _one_table(unique_ratio=0.5)

    def sent(plan: str, wire_float_bytes: int) -> dict[str, float]:
        cfg = cost.Config(100, 4, (op,), dense_params=1000,
                          conventions=cost.Conventions(wire_float_bytes=wire_float_bytes))
        return cost.step_traffic(cfg, plan).by_part("sent")

    des32, des16 = sent("des", 4), sent("des", 2)
    for part in ("forward", "backward", "dense"):
        assert des16[part] == pytest.approx(des32[part] / 2), part
    assert (des16["ids"], des16["metrics"]) == (des32["ids"], des32["metrics"])
    a32, a16 = sent("alltoall", 4), sent("alltoall", 2)
    assert a16["backward"] == pytest.approx(a32["backward"] / 2)
    assert a32["forward"] / 2 < a16["forward"] < a32["forward"]  # its int32 index stays
    r32, r16 = sent("replicated", 4), sent("replicated", 2)
    assert r32["backward"] / 2 < r16["backward"] < r32["backward"]  # int64 keys stay
    assert sent("ps", 2) == sent("ps", 4)


def test_rows_move_each_distinct_id_once_each_way():
    op = _one_table(kind="fm", fields=(cost.Field(3.0),) * 2, unique_ratio=0.5)
    sent = cost.operator_traffic(op, "rows", cost.Config(100, 4, (op,))).by_part("sent")
    away = 3 / 4 * 0.5 * 100 * 6  # distinct ids owned by the 3 other ranks
    assert sent["ids"] == pytest.approx(3 * 8 + away * 8)  # shape check + keys
    assert sent["forward"] == sent["backward"] == pytest.approx(away * 8 * 4)  # dim floats


def test_a_rows_operator_after_a_rows_operator_on_its_ids_sends_no_key():
    embedding = _one_table(name="embedding", unique_ratio=0.4)
    linear = _one_table("linear", name="linear", unique_ratio=0.4, ids_from="embedding")
    cfg = cost.Config(100, 4, (embedding, linear))
    shared = cost.step_traffic(cfg, "rows").by_part("sent")
    alone = cost.operator_traffic(embedding, "rows", cfg).by_part("sent")
    assert shared["ids"] == alone["ids"]  # the embedding's check and keys only
    assert cost.plan_rounds("rows", ids_shared=True) == cost.plan_rounds("rows") - 1 == 2
    assert cost.shares_ids("rows", "rows") and not cost.shares_ids("rows", "des")
    assert cost.choose_plan(linear, ranks=4, batch_per_rank=100,
                            ids_from_plans=("rows",)).rounds["rows"] == 2


def test_growth_with_ranks():
    op = _one_table(fields=(cost.Field(200.0),), unique_ratio=0.3)
    at = {n: {plan: cost.operator_traffic(op, plan, cost.Config(1024, n, (op,),
                                                                input_mode="alltoall_ids")).total
              for plan in cost.PLANS} for n in (256, 512)}
    assert at[512]["des"] / at[256]["des"] > 1.8  # partials (N-1) x, ids flat
    assert at[512]["alltoall"] / at[256]["alltoall"] < 1.5
    assert at[512]["ps"] == at[256]["ps"]


def test_choose_plan():
    tiny = _one_table(fields=(cost.Field(),), unique_ratio=0.01, vocabulary=20)
    assert cost.choose_plan(tiny, ranks=8, batch_per_rank=1024).plan == "replicated"
    one_hot = _one_table(fields=(cost.Field(),) * 26, dim=16, unique_ratio=0.3,
                         vocabulary=10**8)
    choice = cost.choose_plan(one_hot, ranks=64, batch_per_rank=1024)
    assert choice.plan == "rows" and "replicated" in choice.excluded  # popular ids
    few_distinct = dataclasses.replace(one_hot, fields=(cost.Field(4.0),) * 26,
                                       unique_ratio=1.0)  # pooling 4 ids beats 4 rows
    assert cost.choose_plan(few_distinct, ranks=2, batch_per_rank=1024,
                            input_mode="alltoall_ids").plan == "alltoall"
    long_history = _one_table(fields=(cost.Field(200.0),), dim=16, unique_ratio=0.3)
    assert cost.choose_plan(long_history, ranks=2, batch_per_rank=1024,
                            input_mode="replicated_ids").plan == "des"
    with pytest.raises(ValueError, match="no plan for operators"):
        cost.step_traffic(cost.Config(8, 2, (one_hot,)), {})


def test_measure_fields():
    fields, ratio = cost.measure_fields([[[1], [2], [1]], [[5, 5, 6], [], [7]]])
    assert fields == (cost.Field(1.0, 1.0), cost.Field(4 / 3, 1.0))
    assert ratio == pytest.approx(5 / 7)


def test_the_cost_model_imports_without_tensorflow_or_horovod():
    check = ("import sys, des_tf.comm.cost\n"
             "loaded = {'tensorflow', 'horovod', 'keras'} & set(sys.modules)\n"
             "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", check], cwd=REPO_ROOT, check=True, timeout=120)


def test_a_round_weighs_the_latency_of_the_transport_in_use():
    from des_tf.comm import runtime

    # the default is the mesh's (the default transport); a Horovod round waits for a cycle
    assert cost.Conventions().round_bytes == runtime.ROUND_BYTES[runtime.MESH]
    assert runtime.ROUND_BYTES[runtime.MESH] < runtime.ROUND_BYTES[runtime.HOROVOD]
    assert runtime.round_bytes() == runtime.ROUND_BYTES[runtime.transport()]

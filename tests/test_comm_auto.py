"""plan="auto": every rank picks the same plan, from statistics summed over ranks, with
the cost model; the choice is logged once and exposed; training equals single-process
training whatever is chosen.

The test process trains the reference (TinyCTR, plan="des", one rank); two and three
ranks, launched with horovodrun, train
TinyCTR with plan="auto" on all three layers (its linear table declares a tiny vocabulary,
so the layers pick two different plans) and plan crafted tables whose ranks see different
statistics. Every plan is trained explicitly in tests/test_comm_modes.py.
"""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from des_tf.comm import cost
from tests import des_model
from tests.horovod_harness import run_ranks

# Ranks: the strategy's input mode. With allgather ids, TinyCTR's linear table is
# replicated at N = 2 and 3; the others fetch rows, the FM term with the embedding's key
# request (it reads the same id and weight tensors).
LAUNCHES = {2: "allgather_ids", 3: "allgather_ids"}
VOCABULARIES = {"linear": 80}  # it may be replicated; the others' size is unknown
TABLES = des_model.TABLES
CRAFTED = ("tiny", "huge", "long")
CRAFTED_BATCH = 64  # samples per rank
LOG_PREFIX = "des_tf plan=auto:"


def crafted_ids(name: str, rank: int) -> list[list[int]]:
    """This rank's ids (one field) of a crafted table: "tiny" and "huge" one-hot over 20
    hot ids (a vocabulary of 1000 or 10^8 rows); "long" 1 id per sample on rank 0 and 20
    on the others (rank 0 alone would pick alltoall, the global mean picks des)."""
    rng = np.random.default_rng(100 + rank)
    if name in ("tiny", "huge"):
        return [[int(i)] for i in rng.integers(0, 20, CRAFTED_BATCH)]
    length = 1 if rank == 0 else 20
    return [rng.integers(0, 2**40, length).tolist() for _ in range(CRAFTED_BATCH)]


def _plan_crafted_tables() -> dict:
    """{crafted table: plan}, and "long_linear": the plan (and whether its ids were
    costed as shared) of a SparseLinear called after the "long" table on the same ids."""
    import keras

    import des_tf as des
    from des_tf import comm

    strategy = des.DESStrategy(sharding_seed=5)
    plans = {}
    for name in CRAFTED:
        with strategy.scope():
            layer = des.layers.ShardedEmbedding(
                16, plan="auto", name=f"crafted_{name}",
                vocabulary_size={"tiny": 1000, "huge": 10**8}.get(name))
        ids = tf.ragged.constant(crafted_ids(name, comm.rank()), dtype=tf.int64)
        report = des.layers.plan_tables(layer, [ids])
        plans[name] = report[layer.name]["plan"]
    class EmbeddingThenLinear(keras.Model):  # the order of des_tf.models' DeepFM
        def __init__(self):
            super().__init__()
            self.embedding = des.layers.ShardedEmbedding(16, plan="auto")
            self.linear = des.layers.SparseLinear(plan="auto")

        def call(self, ids):
            return self.embedding(ids), self.linear(ids)

    with strategy.scope():
        model = EmbeddingThenLinear()
    des.layers.plan_tables(model, tf.ragged.constant(crafted_ids("long", comm.rank()),
                                                     dtype=tf.int64))
    plans["long_linear"] = [model.linear.plan_in_effect, model.linear.plan_decision.ids_shared]
    return plans


def train_auto(out_dir: str, input_mode: str) -> None:
    """Rank body: trains TinyCTR with plan="auto", plans the crafted tables; saves the
    trained numbers, every rank's plans and the plan report."""
    import keras

    import des_tf as des
    from des_tf import comm

    strategy = des.DESStrategy(input_mode=input_mode, sharding_seed=5)
    with strategy.scope():
        model = des_model.TinyCTR(plan="auto", vocabulary_sizes=VOCABULARIES)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    undecided = [layer.plan_in_effect for layer in (model.embedding, model.linear, model.fm)]
    des.layers.plan_tables(model, des_model.make_batches())  # before fit traces a step
    result = des_model.evaluated_state(model, des_model.fit_steps(model))
    for name in TABLES:
        layer = getattr(model, name)
        if layer.plan_in_effect == "replicated":  # every rank holds every row: rank 0's copy
            rows = layer.table.export()
            fields = {"keys": rows.keys.numpy(), "values": rows.values.numpy(),
                      "slots": rows.slots.numpy(), "updates": rows.metadata[:, 1].numpy()}
            order = np.argsort(fields["keys"])
            fields = {k: v[order] for k, v in fields.items()}
        else:
            fields = des_model._table_rows(layer)
        for field, value in fields.items():
            result[f"{name}_{field}"] = value
    report = des.layers.plan_report(model)
    mine = {"tiny_ctr": {name: getattr(model, name).plan_in_effect for name in TABLES},
            "crafted": _plan_crafted_tables(), "undecided_before_fit": undecided}
    everyone = comm.gather_json(mine)
    if comm.rank() == 0:
        np.savez(f"{out_dir}/auto_n{comm.size()}.npz", **result)
        with open(f"{out_dir}/auto_n{comm.size()}.json", "w") as f:
            json.dump({"ranks": everyone,
                       "report": {name: report[getattr(model, name).name] for name in TABLES}},
                      f)


def train_reference(out_dir: str) -> None:
    """TinyCTR with plan="des" in this process: the single-process reference."""
    import keras

    import des_tf as des

    with des.DESStrategy(sharding_seed=5).scope():
        model = des_model.TinyCTR(plan="des")
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    np.savez(f"{out_dir}/reference.npz", **des_model.trained_state(model))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("comm_auto")
    train_reference(str(out))
    outputs = {n: run_ranks(n, train_auto, args=[str(out), mode], timeout_s=300)
               for n, mode in LAUNCHES.items()}
    return out, outputs


def _load(results, num_ranks):
    out, outputs = results
    info = json.loads((out / f"auto_n{num_ranks}.json").read_text())
    return np.load(out / f"auto_n{num_ranks}.npz"), info, outputs[num_ranks]


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_auto_training_equals_single_process(results, num_ranks):
    reference = np.load(results[0] / "reference.npz")
    trained, info, _ = _load(results, num_ranks)
    assert len(reference["losses"]) == des_model.STEPS
    assert set(trained.files) == set(reference.files)
    for key in reference.files:
        np.testing.assert_allclose(trained[key], reference[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"comm=auto, {num_ranks} ranks: {key}")
    plans = info["ranks"][0]["tiny_ctr"]
    # Linear: the only table with a (tiny) declared vocabulary; the others' batches repeat
    # ids, and FM shares the embedding's keys.
    assert plans == {"embedding": "rows", "linear": "replicated", "fm": "rows"}, plans


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_every_rank_makes_the_same_choice(results, num_ranks):
    _, info, _ = _load(results, num_ranks)
    ranks = info["ranks"]
    assert len(ranks) == num_ranks
    assert all(r["undecided_before_fit"] == [None, None, None] for r in ranks)
    assert all(r["tiny_ctr"] == ranks[0]["tiny_ctr"] for r in ranks)
    assert all(r["crafted"] == ranks[0]["crafted"] for r in ranks)


def _crafted_choice(name: str, ranks: list[int], num_ranks: int, kind: str = "embedding"
                    ) -> str:
    """choose_plan on the statistics of the given ranks' crafted ids (the cost model's
    inputs computed here independently of des_tf.layers.planner)."""
    per_rank = [crafted_ids(name, r) for r in ranks]
    samples = sum(len(b) for b in per_rank)
    occurrences = sum(len(ids) for b in per_rank for ids in b)
    distinct = sum(len(set(ids)) for b in per_rank for ids in b)
    unique = sum(len({i for ids in b for i in ids}) for b in per_rank)
    op = cost.Operator(kind, (cost.Field(occurrences / samples, distinct / samples),),
                       16 if kind == "embedding" else 1, unique / occurrences,
                       {"tiny": 1000, "huge": 10**8}.get(name))
    return cost.choose_plan(op, ranks=num_ranks, batch_per_rank=CRAFTED_BATCH).plan


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_planner_picks_per_table_from_global_statistics(results, num_ranks):
    _, info, _ = _load(results, num_ranks)
    chosen = info["ranks"][0]["crafted"]
    assert {k: v for k, v in chosen.items() if k in CRAFTED} == {
        "tiny": "replicated", "huge": "rows", "long": "des"}
    # The linear term rides on the "long" embedding's id exchange, so "des" costs it no
    # id bytes: it stays there, where costed alone it would fetch rows.
    assert chosen["long_linear"] == ["des", True]
    assert _crafted_choice("long", list(range(num_ranks)), num_ranks, kind="linear") == "rows"
    for name in CRAFTED:
        assert chosen[name] == _crafted_choice(name, list(range(num_ranks)), num_ranks)
    # Rank 0's own statistics alone would have picked another plan for "long".
    assert _crafted_choice("long", [0], num_ranks) == "rows"


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_choice_is_logged_once_on_rank_zero_and_reported(results, num_ranks):
    _, info, output = _load(results, num_ranks)
    lines = [line for line in output.splitlines() if LOG_PREFIX in line]
    assert len(lines) == len(TABLES) + len(CRAFTED) + 2, lines  # + "long" with its linear
    assert all(re.match(r"^\[0\]<stdout>:", line) for line in lines), lines
    for name in TABLES:
        entry = info["report"][name]
        assert entry["requested"] == "auto"
        assert set(entry["bytes_per_step"]) == {"des", "alltoall", "replicated", "rows"}
        weighed = {p: b + entry["rounds"][p] * cost.Conventions().round_bytes
                   for p, b in entry["bytes_per_step"].items()
                   if b is not None and np.isfinite(b)}
        assert min(weighed, key=weighed.get) == entry["plan"]
        assert f"-> {entry['plan']} (" in entry["description"]
        assert any(entry["description"] in line for line in lines)
    assert info["report"]["embedding"]["excluded"] == {"replicated": "vocabulary unknown"}
    # FM's rows ride on the embedding's key request: costed without keys, in 2 rounds.
    assert "(ids shared)" in info["report"]["fm"]["description"]
    assert info["report"]["fm"]["rounds"]["rows"] == 2
    assert "(ids shared)" not in info["report"]["embedding"]["description"]


def test_undecided_layer_refuses_to_be_traced_and_decides_when_called_eagerly():
    import des_tf as des

    with des.DESStrategy().scope():
        layer = des.layers.ShardedEmbedding(4, plan="auto")
    ids = tf.ragged.constant([[1, 2], [3]], dtype=tf.int64)
    with pytest.raises(RuntimeError, match=r"has plan='auto' and has not chosen .*plan_tables"):
        tf.function(lambda x: layer(x))(ids)
    assert layer.plan_in_effect is None and layer.table.size() == 0
    assert layer(ids).shape == (2, 1, 4)
    assert layer.plan_in_effect == "des"  # one rank: every plan moves 0 bytes, ties go to des
    assert layer.plan_decision.ranks == 1 and layer.plan_decision.operator.fields[0] == \
        cost.Field(1.5, 1.5)

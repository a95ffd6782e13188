"""The execution modes of the DES layers (plan="des" / "alltoall" / "replicated" /
"rows") train to the same numbers as single-process training on the same global batches
(losses, dense weights, every table row and optimizer slot) for N = 1, 2, 3; replicated
tables stay identical on every rank; each mode uses the collectives it claims (byte
counters).

One launch per N trains the test model (tests/des_model.py) once per mode, with all
three of its DES layers in that mode; the launches use different input modes so that
the alltoall plan sees ids from every id exchange.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests import des_model
from tests.horovod_harness import run_ranks

# (ranks, the strategy's input mode, the comm modes trained in that launch)
LAUNCHES = {1: ("allgather_ids", ("des", "alltoall", "replicated", "rows")),
            2: ("alltoall_ids", ("alltoall", "replicated", "rows")),
            3: ("replicated_ids", ("alltoall", "replicated", "rows"))}
TABLES = des_model.TABLES


def _copies_identical(table) -> bool:
    """Whether every rank's copy of a replicated table has the same keys, values, slots
    and update counts as rank 0's (bit for bit)."""
    from des_tf import comm
    rows = table.export()
    sizes = comm.allgather(tf.shape(rows.keys)[:1])
    if not bool(tf.reduce_all(sizes == sizes[0])):
        return False
    for x in (rows.keys, rows.values, rows.slots, rows.metadata[:, 1]):
        everyone = comm.allgather(x[None]) if comm.size() > 1 else x[None]
        if not bool(tf.reduce_all(everyone == everyone[:1])):
            return False
    return True


def _checkpoint_round_trip(model, out_dir: str) -> dict:
    """Saves `model` (replicated tables), empties its tables and restores the checkpoint
    into it; reports the rows the checkpoint holds per table and whether every copy came
    back as it was."""
    import des_tf as des
    from des_tf import comm

    before = [getattr(model, name).table.export() for name in TABLES]
    path = des.checkpoint.save(model, os.path.join(out_dir, f"ckpt_n{comm.size()}"), step=1)
    for rows, name in zip(before, TABLES):
        getattr(model, name).table.remove(rows.keys)
    des.checkpoint.restore(model, path)
    after = [getattr(model, name).table.export() for name in TABLES]
    same = all(bool(tf.reduce_all(x == y)) for b, a in zip(before, after)
               for x, y in zip(b[:3], a[:3]))
    with open(os.path.join(path, "manifest.json")) as f:
        rows = json.load(f)["table_rows"]
    return {"checkpoint_rows": [rows[name] for name in sorted(rows)],
            "restored_unchanged": bool(comm.allreduce(tf.constant(0 if same else 1)).numpy() == 0)}


def train_comm_modes(out_dir: str, input_mode: str, comms: str) -> None:
    """Rank body: trains TinyCTR in each of `comms` (comma-separated) and saves what the
    tests compare, plus the bytes each collective kind sent per training step."""
    import keras

    import des_tf as des
    from des_tf import comm

    for mode in comms.split(","):
        strategy = des.DESStrategy(input_mode=input_mode, sharding_seed=5)
        with strategy.scope():
            model = des_model.TinyCTR(plan=mode)
            model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                          metrics=[keras.metrics.AUC(name="auc")])
        comm.counters().reset()
        history = des_model.fit_steps(model)
        sent = comm.counters().snapshot()["sent"]
        result = des_model.evaluated_state(model, history)
        info = {"identical_copies": True, "owner_matches_rank": True}
        for name in TABLES:
            layer = getattr(model, name)
            if mode == "replicated":  # every rank holds all rows: compare rank 0's copy
                info["identical_copies"] &= _copies_identical(layer.table)
                rows = layer.table.export()
                fields = {"keys": rows.keys.numpy(), "values": rows.values.numpy(),
                          "slots": rows.slots.numpy(), "updates": rows.metadata[:, 1].numpy()}
            else:
                fields = des_model._table_rows(layer)
                keys = layer.table.export().keys
                owners = des.shard_owner(keys, comm.size(), seed=5).numpy()
                info["owner_matches_rank"] &= bool((owners == comm.rank()).all())
            for field, value in fields.items():
                result[f"{name}_{field}"] = value
        info["local_rows"] = comm.allgather(
            tf.constant([int(model.embedding.table.size())], tf.int64)).numpy().tolist()
        info["identical_copies"] = bool(comm.allreduce(
            tf.constant(0 if info["identical_copies"] else 1)).numpy() == 0)
        info["owner_matches_rank"] = bool(comm.allreduce(
            tf.constant(0 if info["owner_matches_rank"] else 1)).numpy() == 0)
        per_rank = comm.allgather(tf.constant([[sent[k] for k in sorted(sent)]], tf.int64))
        info["sent_per_step"] = dict(zip(sorted(sent), (per_rank.numpy().mean(axis=0)
                                                         / des_model.STEPS).tolist()))
        if mode == "replicated":
            info.update(_checkpoint_round_trip(model, out_dir))
        if comm.rank() == 0:
            stem = os.path.join(out_dir, f"{mode}_n{comm.size()}")
            np.savez(stem + ".npz", **result)
            with open(stem + ".json", "w") as f:
                json.dump(info, f)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("comm_modes")
    for num_ranks, (input_mode, comms) in LAUNCHES.items():
        run_ranks(num_ranks, train_comm_modes, args=[str(out), input_mode, ",".join(comms)],
                  timeout_s=300)
    return out


def _load(results, mode, num_ranks):
    return (np.load(results / f"{mode}_n{num_ranks}.npz"),
            json.loads((results / f"{mode}_n{num_ranks}.json").read_text()))


@pytest.mark.parametrize("mode", ["alltoall", "replicated", "rows"])
@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_mode_training_equals_single_process(results, mode, num_ranks):
    reference, _ = _load(results, "des", 1)
    trained, _ = _load(results, mode, num_ranks)
    assert {"losses", "eval", "dense_0", "embedding_values", "fm_slots",
            "linear_values"} <= set(reference.files)
    assert len(reference["losses"]) == des_model.STEPS
    assert (reference["embedding_updates"] > 0).all()
    for key in reference.files:
        np.testing.assert_allclose(trained[key], reference[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"comm={mode}, {num_ranks} ranks: {key}")


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_replicated_tables_are_identical_full_copies(results, num_ranks):
    reference, _ = _load(results, "des", 1)
    _, info = _load(results, "replicated", num_ranks)
    assert info["identical_copies"]
    assert info["local_rows"] == [len(reference["embedding_keys"])] * num_ranks


@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_replicated_tables_checkpoint_each_row_once_and_restore(results, num_ranks):
    reference, _ = _load(results, "des", 1)
    _, info = _load(results, "replicated", num_ranks)
    assert info["checkpoint_rows"] == [len(reference[f"{name}_keys"])
                                       for name in TABLES]
    assert info["restored_unchanged"]


@pytest.mark.parametrize("mode", ["alltoall", "rows"])
@pytest.mark.parametrize("num_ranks", [2, 3])
def test_each_row_lives_on_its_owner_only(results, mode, num_ranks):
    reference, _ = _load(results, "des", 1)
    _, info = _load(results, mode, num_ranks)
    assert info["owner_matches_rank"]
    assert sum(info["local_rows"]) == len(reference["embedding_keys"])
    assert max(info["local_rows"]) < len(reference["embedding_keys"])


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_byte_counters_show_each_modes_collectives(results, num_ranks):
    """Training steps (dense DES's own counts are tested in test_des_multirank): alltoall
    aggregation uses no reduce-scatter, and its only allgather is each id exchange's check
    of the ranks' batch shapes (2 int32 to every peer; two exchanges: FMInteraction reads
    the embedding's ids and weights and reuses its exchange, SparseLinear reads no
    weights); replicated tables move no ids and no partials (no alltoall, no
    reduce-scatter) and allgather their sparse gradients; the rows plan checks the batch
    shapes once per id input as well (FMInteraction shares the embedding's entries and
    key request) and moves keys, rows and row gradients by alltoall only."""
    sent = {mode: _load(results, mode, num_ranks)[1]["sent_per_step"]
            for mode in ("alltoall", "replicated", "rows")}
    shape_checks = 2 * 8 * (num_ranks - 1)
    assert sent["alltoall"]["reduce_scatter"] == 0
    assert sent["alltoall"]["allgather"] == shape_checks
    assert sent["alltoall"]["alltoall"] > 0
    assert sent["replicated"]["reduce_scatter"] == 0 and sent["replicated"]["alltoall"] == 0
    assert sent["replicated"]["allgather"] > shape_checks
    assert sent["rows"]["reduce_scatter"] == 0 and sent["rows"]["alltoall"] > 0
    assert sent["rows"]["allgather"] == shape_checks
    for mode in sent:
        assert sent[mode]["allreduce"] > 0  # dense gradients and metrics, as in every mode


def test_unknown_plan_is_rejected_naming_the_options():
    import des_tf as des

    with pytest.raises(ValueError, match=r"plan must be one of \('des', 'alltoall', "
                                         r"'replicated', 'rows', 'auto'\), got 'bogus'"):
        des.layers.ShardedEmbedding(4, plan="bogus")
    with pytest.raises(ValueError, match="row_budget is not supported with plan='replicated'"):
        des.layers.ShardedEmbedding(4, plan="replicated", row_budget=10)

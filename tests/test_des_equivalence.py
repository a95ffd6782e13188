"""The central invariant: N-rank DES training equals single-process training on the same
global batches (losses, dense weights, every table row and optimizer slot, and the
metrics Keras reports, which are global over ranks), for N = 1, 2, 3 and every input
mode; and every key lives on exactly its owner (conservation)."""

import json

import numpy as np
import pytest

from des_tf.comm.cost import INPUT_MODES
from tests import des_model
from tests.horovod_harness import run_ranks

REFERENCE = INPUT_MODES[0]  # the single-process run every other run is compared with


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Trains the test model with 1, 2 and 3 ranks; returns the output folder."""
    out = tmp_path_factory.mktemp("equivalence")
    for num_ranks in (1, 2, 3):
        run_ranks(num_ranks, des_model.train_and_save, args=[str(out)], timeout_s=400)
    return out


def _load(results, mode, num_ranks):
    return np.load(results / f"{mode}_n{num_ranks}.npz")


@pytest.mark.parametrize("mode", INPUT_MODES)
@pytest.mark.parametrize("num_ranks", [2, 3])
def test_des_training_equals_single_process(results, mode, num_ranks):
    reference, des = _load(results, REFERENCE, 1), _load(results, mode, num_ranks)
    compared = [k for k in reference.files if not k.endswith("local_rows")]
    assert {"losses", "aucs", "eval", "dense_0", "embedding_values", "fm_slots",
            "linear_values"} <= set(compared)
    assert len(reference["losses"]) == des_model.STEPS
    for key in compared:
        np.testing.assert_allclose(des[key], reference[key], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{mode}, {num_ranks} ranks: {key}")


def test_reference_run_really_trains(results):
    reference = _load(results, REFERENCE, 1)
    for table in des_model.TABLES:
        assert (reference[f"{table}_updates"] > 0).all(), f"{table}: rows never updated"
    losses = reference["losses"]
    assert losses[-1] < losses[0] - 0.01, losses  # the running mean loss goes down
    assert reference["eval"][1] > 0.75  # AUC of the trained model on its training data


@pytest.mark.parametrize("mode", INPUT_MODES[1:])
def test_single_process_runs_agree_across_input_modes(results, mode):
    reference, single = _load(results, REFERENCE, 1), _load(results, mode, 1)
    for key in reference.files:
        np.testing.assert_array_equal(single[key], reference[key], err_msg=f"{mode}: {key}")


@pytest.mark.parametrize("mode", INPUT_MODES)
@pytest.mark.parametrize("num_ranks", [1, 2, 3])
def test_every_key_is_stored_once_on_its_owner(results, mode, num_ranks):
    owners = json.loads((results / f"{mode}_n{num_ranks}_owners.json").read_text())
    assert owners["owner_matches_rank"]
    assert owners["distinct"] == owners["total"]  # no key on two ranks
    reference = _load(results, REFERENCE, 1)
    assert owners["total"] == len(reference["embedding_keys"])  # none lost
    if num_ranks > 1:  # the rows are really spread, not all on one rank
        assert _load(results, mode, num_ranks)["embedding_local_rows"][0] < owners["total"]


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_mixed_float16_training_equals_single_process_within_float16_rounding(results,
                                                                              num_ranks):
    """Under mixed_float16 the dense layers compute in float16 on each rank's part of the
    batch, so their sums round differently than in one process: each array is compared by
    its relative L2 error (measured: 8e-4 at most; the dense optimizer is SGD, as Adam
    would turn that rounding into steps of its learning rate wherever a gradient is near
    zero). Tables fed the still loss-scaled gradients are off by 0.1-0.7 of their norm."""
    reference = _load(results, "mixed_float16", 1)
    des = _load(results, "mixed_float16", num_ranks)
    assert (reference["embedding_updates"] == des_model.STEPS).any()  # no step skipped
    for key in reference.files:
        if key.endswith(("keys", "updates")):
            np.testing.assert_array_equal(des[key], reference[key], err_msg=key)
        elif not key.endswith("local_rows"):
            error = np.linalg.norm(des[key] - reference[key]) / np.linalg.norm(reference[key])
            assert error < 2e-3, f"mixed_float16, {num_ranks} ranks: {key}: {error}"


def test_mixed_float16_overflow_on_one_rank_skips_the_step_on_every_rank(results):
    for num_ranks in (1, 2, 3):
        ranks = json.loads((results / f"mixed_float16_overflow_n{num_ranks}.json").read_text())
        assert ranks == [{"table_steps": [0, 0, 0], "iterations": 0, "scale": 2.0**7,
                          "kernel_unchanged": True}] * num_ranks, num_ranks


# Largest relative L2 error of any weight, table or slot array from the float32 run after
# 40 steps (measured 0.096 and 0.0018: a hidden bias in bfloat16, the FM table in float16).
COMM_DTYPE_TOLERANCE = {"bfloat16": 0.15, "float16": 0.01}


@pytest.mark.parametrize(("comm_dtype", "plan"), des_model.REDUCED_COMM_RUNS)
@pytest.mark.parametrize("num_ranks", [2, 3])
def test_16_bit_comm_dtype_stays_close_to_float32(results, comm_dtype, plan, num_ranks):
    """Partials, their gradients and the dense gradients rounded to 16 bits on the wire:
    replicated copies stay identical; same keys and update counts; losses and AUC within
    1e-3 / 5e-3 of the exact run at every step (measured 8e-4 / 2.5e-3); every array
    within COMM_DTYPE_TOLERANCE. The dense all-reduce sends 2 bytes per parameter, in one
    reduce-scatter + allgather."""
    reference = _load(results, REFERENCE, 1)
    reduced = dict(_load(results, f"{comm_dtype}_{plan}", num_ranks))
    if plan == "replicated":  # every rank's copy, gathered by key: all equal, keep one
        for key in [k for k in reduced if k.startswith(des_model.TABLES)]:
            copies = reduced[key].reshape(-1, num_ranks, *reduced[key].shape[1:])
            np.testing.assert_array_equal(copies, copies[:, :1].repeat(num_ranks, 1), key)
            reduced[key] = copies[:, 0]
    for key in reference.files:
        if key.endswith(("keys", "updates")):
            np.testing.assert_array_equal(reduced[key], reference[key], err_msg=key)
        elif key in ("losses", "aucs", "eval"):
            np.testing.assert_allclose(reduced[key], reference[key], rtol=0,
                                       atol=1e-3 if key != "aucs" else 5e-3, err_msg=key)
        elif not key.endswith("local_rows"):
            error = np.linalg.norm(reduced[key] - reference[key]) / np.linalg.norm(reference[key])
            assert error < COMM_DTYPE_TOLERANCE[comm_dtype], (key, error)
    n, params = num_ranks, int(reduced["dense_params"])
    # All-reduce bytes of `values` values of `size` bytes: in float32 on 2 ranks one round
    # (the values once), else a reduce-scatter + allgather of blocks padded to n.
    def ring(values, size):
        return values * size if n == 2 and size == 4 else 2 * (n - 1) * -(-values // n) * size
    # The FM table's float32 gradient norm (replicated copies each hold the whole gradient).
    grouped, clipnorm = ring(params, 2), 0 if plan == "replicated" else ring(1, 4)
    np.testing.assert_array_equal(reduced["allreduce_per_step"], grouped + clipnorm)

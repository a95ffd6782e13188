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
    for table in ("embedding", "linear", "fm"):
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

"""des_tf.comm collectives on 1 process (in pytest) and on 2 and 3 ranks (horovodrun)."""

import numpy as np
import pytest
import tensorflow as tf

from des_tf import comm
from tests.horovod_harness import run_ranks


def _reduce_scatter_block(rows: int, size: int, rank: int) -> slice:
    """Rows of rank's block under Horovod's rule: the first rows % size ranks get one more."""
    sizes = [rows // size + (1 if r < rows % size else 0) for r in range(size)]
    start = sum(sizes[:rank])
    return slice(start, start + sizes[rank])


def _check_collectives() -> None:
    """Rank body: every collective against the value it must produce on this rank."""
    rank, size = comm.rank(), comm.size()
    contributions = sum(range(1, size + 1))  # rank r contributes (r + 1) * x

    # allgather with a different number of rows on every rank, eagerly and traced.
    mine = tf.fill([rank + 1, 3], float(rank))
    gathered = np.concatenate([np.full([r + 1, 3], float(r)) for r in range(size)])
    np.testing.assert_array_equal(comm.allgather(mine).numpy(), gathered)
    np.testing.assert_array_equal(tf.function(comm.allgather)(mine).numpy(), gathered)
    # Some ranks send none.
    ids = tf.constant([10 * rank + i for i in range(rank % 2 * 4)], tf.int64)
    expected_ids = [10 * r + i for r in range(size) for i in range(r % 2 * 4)]
    np.testing.assert_array_equal(comm.allgather(ids).numpy(), expected_ids)

    # allreduce: sum and mean.
    x = tf.constant([1.0, -2.0, 0.5])
    np.testing.assert_allclose(comm.allreduce(x * (rank + 1)).numpy(), x.numpy() * contributions)
    np.testing.assert_allclose(comm.allreduce(x * (rank + 1), average=True).numpy(),
                               x.numpy() * contributions / size, rtol=1e-6)

    # reduce_scatter of 7 rows: uneven for 2 and 3 ranks.
    partial = np.arange(14, dtype=np.float32).reshape(7, 2)
    scattered = tf.function(comm.reduce_scatter)(tf.constant(partial * (rank + 1)))
    block = _reduce_scatter_block(7, size, rank)
    np.testing.assert_allclose(scattered.numpy(), (partial * contributions)[block])


def test_collectives_single_process():
    assert comm.size() == 1 and comm.rank() == 0
    _check_collectives()


@pytest.mark.parametrize("num_ranks", [2, 3])
def test_collectives_across_ranks(num_ranks):
    output = run_ranks(num_ranks, _check_collectives)
    assert output.count("DES_RANK_DONE") == num_ranks

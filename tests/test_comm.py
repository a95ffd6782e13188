"""des_tf.comm collectives on 1 process (in pytest) and on 2 and 3 ranks (horovodrun),
over the mesh transport and over Horovod's; the core binding of ranks sharing a host."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from des_tf import comm
from des_tf.comm import wire
from des_tf.comm.runtime import TRANSPORT_ENV
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
    counts = tf.function(comm.allreduce)(tf.constant([[rank + 1, 7]], tf.int64))
    np.testing.assert_array_equal(counts.numpy(), [[contributions, 7 * size]])

    # reduce_scatter of 7 rows: uneven for 2 and 3 ranks.
    partial = np.arange(14, dtype=np.float32).reshape(7, 2)
    scattered = tf.function(comm.reduce_scatter)(tf.constant(partial * (rank + 1)))
    block = _reduce_scatter_block(7, size, rank)
    np.testing.assert_allclose(scattered.numpy(), (partial * contributions)[block])

    # alltoall: rank r sends r + 1 rows to each rank (traced, as in a step); the
    # gradient returns every row's gradient to its sender, here the receiver's weight.
    sent = tf.constant([[100.0 * rank + i] for i in range(size * (rank + 1))])
    with tf.GradientTape() as tape:
        tape.watch(sent)
        received, counts = tf.function(comm.alltoall)(sent, tf.fill([size], rank + 1))
        weighted = tf.reduce_sum(received * (rank + 1.0))
    np.testing.assert_array_equal(counts.numpy(), np.arange(1, size + 1))
    np.testing.assert_array_equal(received.numpy()[:, 0], [
        100.0 * r + rank * (r + 1) + i for r in range(size) for i in range(r + 1)])
    np.testing.assert_array_equal(tape.gradient(weighted, sent).numpy()[:, 0],
                                  np.repeat(np.arange(1.0, size + 1), rank + 1))

    # 16-bit wire formats (identity on one rank): values exact in them arrive exact; the
    # all-reduce of a [2, 3] tensor pads it to a multiple of the ranks and back.
    exact = tf.constant([[1.0, -2.0, 0.5], [3.0, 0.25, -8.0]])
    for dtype in ("bfloat16", "float16"):
        np.testing.assert_array_equal(
            tf.function(comm.allreduce)(exact * (rank + 1), True, dtype).numpy(),
            exact.numpy() * contributions / size)
        np.testing.assert_array_equal(comm.allgather(mine, dtype).numpy(), gathered)
        np.testing.assert_array_equal(
            comm.reduce_scatter(tf.constant(partial * (rank + 1)), comm_dtype=dtype).numpy(),
            (partial * contributions)[block])


def test_wire_formats_round_once_and_refuse_float16_overflow():
    x = tf.constant([1 + 2.0**-10, -3.0, float("inf"), float("nan")])
    for dtype, kept in (("bfloat16", 1.0), ("float16", 1 + 2.0**-10)):
        words = wire.encode(x, dtype)
        assert words.dtype == tf.int16 and wire.value_bytes(dtype) == 2
        back = wire.decode(words, dtype).numpy()
        np.testing.assert_array_equal(back[:3], [kept, -3.0, np.inf])  # inf, NaN pass
        assert np.isnan(back[3])
    assert wire.encode(x, "float32") is x
    with pytest.raises(tf.errors.InvalidArgumentError, match="exceeds float16's range"):
        wire.encode(tf.constant([70000.0]), "float16")
    with pytest.raises(TypeError, match="float32 payloads"):
        wire.encode(tf.constant([1], tf.int64), "bfloat16")
    with pytest.raises(ValueError, match="comm_dtype must be one of"):
        wire.check("float8")


def test_collectives_single_process():
    assert comm.size() == 1 and comm.rank() == 0
    _check_collectives()


@pytest.mark.parametrize("num_ranks, transport", [(2, "mesh"), (3, "mesh"), (2, "horovod")])
def test_collectives_across_ranks(num_ranks, transport):
    output = run_ranks(num_ranks, _check_collectives, env={TRANSPORT_ENV: transport})
    assert output.count("DES_RANK_DONE") == num_ranks


@pytest.mark.parametrize("local_rank, local_size", [(1, 2), (0, 999)])
def test_ranks_sharing_a_host_bind_to_their_share_of_cores(local_rank, local_size):
    """In a fresh process (binding moves every thread): local rank r of L gets the r-th
    contiguous L-th of the cores; more ranks than cores bind nothing."""
    code = ("import json, os; from des_tf.comm.runtime import bind_to_local_cores; "
            "cores = sorted(os.sched_getaffinity(0)); "
            f"share = bind_to_local_cores({local_rank}, {local_size}); "
            "print(json.dumps([cores, share, sorted(os.sched_getaffinity(0))]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    cores, share, after = json.loads(done.stdout.strip().splitlines()[-1])
    if local_size > len(cores):
        assert share is None and after == cores
    else:
        n = len(cores)
        assert share == after == cores[local_rank * n // local_size:
                                       (local_rank + 1) * n // local_size]

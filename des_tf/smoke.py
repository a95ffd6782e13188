"""Foundation smoke job: one DES forward step of a sparse linear (LR) term on N ranks.

Until the models land (`make demo` then becomes the DeepFM job), this shows the DES
plan of DESIGN.md section 3 with the real op and collectives: ids to owners
(allgather), owner-local partial sums, reduce-scatter of the partials, and checks
the result against the single-device sum on the same samples.

  horovodrun -np 2 -H localhost:2 --gloo python -m des_tf.smoke
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from des_tf import comm
from des_tf.sharding import shard_owner

SAMPLES_PER_RANK = 4096
FIELDS = 26
VOCABULARY = 1_000_000
SHARDING_SEED = 0


def key_weight(keys: tf.Tensor) -> tf.Tensor:
    """A fixed pseudo-random LR weight per key, so any rank can evaluate any row."""
    return tf.cast(shard_owner(keys, 1 << 20, seed=97), tf.float32) / (1 << 20) - 0.5


def main() -> None:
    rank, size = comm.rank(), comm.size()
    rng = np.random.default_rng(rank)
    local_ids = tf.constant(rng.zipf(1.2, [SAMPLES_PER_RANK, FIELDS]) % VOCABULARY, tf.int64)

    start = time.perf_counter()
    global_ids = comm.allgather(local_ids)  # every rank sees all ids
    owned = tf.equal(shard_owner(global_ids, size, seed=SHARDING_SEED), rank)
    partials = tf.reduce_sum(tf.where(owned, key_weight(global_ids), 0.0), axis=1, keepdims=True)
    logits = comm.reduce_scatter(partials)  # summed partials of this rank's own samples
    elapsed = time.perf_counter() - start

    direct = tf.reduce_sum(key_weight(local_ids), axis=1, keepdims=True)
    error = float(tf.reduce_max(tf.abs(logits - direct)))
    sent_ids = (size - 1) * local_ids.shape[0] * FIELDS * 8
    sent_partials = (size - 1) * SAMPLES_PER_RANK * 4
    weights_read = int(tf.size(tf.unique(tf.boolean_mask(global_ids, owned))[0]))
    print(
        f"rank {rank}/{size}: DES LR step over {size * SAMPLES_PER_RANK} samples x {FIELDS} fields "
        f"in {elapsed * 1e3:.1f} ms; max |DES - direct| = {error:.2e}; sent "
        f"{sent_ids} B of ids + {sent_partials} B of partials; "
        f"{weights_read} owned weights read locally, none sent",
        flush=True,
    )
    if error > 1e-4:
        raise SystemExit(f"rank {rank}: DES result differs from the direct sum by {error}")


if __name__ == "__main__":
    main()

"""The mesh transport: a TCP connection between every pair of ranks carrying the
collectives of the training step (DesMeshAlltoall; docs/design.md section 4.4).

Horovod starts the job; the mesh is the default transport of des_tf.comm (runtime.
TRANSPORT_ENV). A collective starts when its op runs instead of at Horovod's next
background cycle after a negotiation round, and nothing but a heartbeat runs between
steps (ops/cc/kernels/peer_mesh.h says what that saves). des_tf.comm builds its
collectives from the alltoall, allgather and one-round allreduce here.
"""

from __future__ import annotations

import os

import horovod.tensorflow as hvd
import tensorflow as tf

from des_tf import ops_library

# Seconds to wait for every rank's listener while connecting.
CONNECT_TIMEOUT_S = 60.0
# Seconds of silence (no heartbeat) after which a peer is lost: Gloo's collective timeout
# (DESStrategy(collective_timeout_s=...), horovodrun --gloo-timeout-seconds), else
# Horovod's default.
DEAD_AFTER_ENV, DEFAULT_DEAD_AFTER_S = "HOROVOD_GLOO_TIMEOUT_SECONDS", 30.0


def connect(host: str) -> None:
    """Listens on IPv4 `host`, learns every rank's listener address (Horovod's own
    allgather: des_tf.comm's gather_json would need the mesh) and connects to every other
    rank; once per process, all ranks together."""
    ops = ops_library.load()
    addresses = hvd.allgather_object(ops.des_mesh_listen(host).numpy().decode())
    ops.des_mesh_connect(addresses, rank=hvd.rank(), connect_s=CONNECT_TIMEOUT_S,
                         dead_after_s=float(os.environ.get(DEAD_AFTER_ENV, DEFAULT_DEAD_AFTER_S)))


def alltoall(x: tf.Tensor, splits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Rows splits[r] of `x` to rank r; (rows received in rank order, their counts)."""
    return ops_library.load().des_mesh_alltoall(x, tf.cast(splits, tf.int32))


def allgather(x: tf.Tensor) -> tf.Tensor:
    """Every rank's rows of `x`, in rank order (x is sent whole to each peer, not tiled)."""
    return ops_library.load().des_mesh_allgather(x)[0]


def allreduce(x: tf.Tensor) -> tf.Tensor:
    """The sum of every rank's `x` in one round, added in rank order on every rank: each
    rank sends all of `x` to each peer, so it suits 2 ranks (a ring's bytes) or small x."""
    return ops_library.load().des_mesh_allreduce(x)


@tf.RegisterGradient("DesMeshAlltoall")
def _alltoall_gradient(op, received_grad, _):
    """Each received row's gradient goes back to the rank that sent it, which finds its
    rows' gradients in the order it sent them."""
    return alltoall(received_grad, op.outputs[1])[0], None

"""One gRPC server of the PS baseline: `python -m bench.ps.server CLUSTER_JSON JOB TASK
THREADS`. Parameter servers hold the variables; workers run the steps the coordinator
schedules. Both just serve until the launcher ends them or their standard input closes.

A worker also writes its task index to `task_index` in its working directory, where the
input pipeline the coordinator ships to every worker reads it (see coordinator.py). That
pipeline is des-tf's Criteo reader, whose multi-hot columns are parsed by a des-tf op
(DesParseIdLists), so every server loads des-tf's op library before it serves.
"""

from __future__ import annotations

import json
import os
import sys
import threading

import tensorflow as tf

from des_tf import ops_library


def main(argv: list[str]) -> None:
    cluster, job, task, threads = json.loads(argv[1]), argv[2], int(argv[3]), int(argv[4])
    config = tf.compat.v1.ConfigProto()
    if threads:
        config.intra_op_parallelism_threads = threads
        config.inter_op_parallelism_threads = threads
    if job == "worker":
        with open("task_index", "w") as out:
            out.write(f"{task}\n")
    ops_library.load()
    server = tf.distribute.Server(tf.train.ClusterSpec(cluster), job_name=job,
                                  task_index=task, protocol="grpc", config=config, start=True)
    print(f"ps_baseline: {job} {task} serving at {server.target}", flush=True)
    threading.Thread(target=_end_with_launcher, daemon=True).start()
    server.join()


def _end_with_launcher() -> None:
    """Ends this process when standard input closes: the launcher (or the ssh session
    that started this server on its host) is gone."""
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)

"""What one dependent collective round costs, per transport: 2 ranks (horovodrun) run a
tf.function of K alltoalls of 1 KiB, each waiting for the one before (as a DES step's
rounds do), for K = 1 and 8; a round's cost is the slope, (t8 - t1) / 7. Prints a table,
writes <out_dir>/collective_rounds.{md,png}. From the repository root:

    .venv/bin/python bench/collective_rounds.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.compare import TRANSPORT_ENV, TRANSPORTS, child_env  # noqa: E402

ROUNDS = (1, 8)
RESULT = "ROUND_MS "


def rank_body(rounds: int, calls: int) -> None:
    """On every rank: `calls` timed calls of a step of `rounds` chained alltoalls."""
    import tensorflow as tf

    from des_tf import comm

    comm.init()
    x = tf.ones([256], tf.float32)
    splits = tf.fill([comm.size()], 256 // comm.size())

    @tf.function
    def step(value):
        for _ in range(rounds):
            value = comm.alltoall(value, splits)[0] + 1.0
        return value

    for _ in range(20):
        step(x)
    started = time.perf_counter()
    for _ in range(calls):
        result = step(x)
    result.numpy()
    if comm.rank() == 0:
        print(RESULT + str((time.perf_counter() - started) / calls * 1e3), flush=True)


def measure(transport: str, rounds: int, calls: int) -> float:
    """ms per step of `rounds` rounds on 2 ranks over `transport`."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    done = subprocess.run(
        [horovodrun, "-np", "2", "-H", "localhost:2", "--gloo", sys.executable, __file__,
         f"--rank_body={rounds},{calls}"],
        cwd=REPO_ROOT, env={**child_env(2), TRANSPORT_ENV: transport}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
    found = [line.split(RESULT, 1)[1] for line in done.stdout.splitlines() if RESULT in line]
    if done.returncode or not found:
        raise RuntimeError(f"{transport}, {rounds} rounds failed:\n{done.stdout[-3000:]}")
    return float(found[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out_dir", default=str(REPO_ROOT / "bench" / "results"))
    parser.add_argument("--rank_body", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_body:
        rank_body(*(int(v) for v in args.rank_body.split(",")))
        return
    rows = []
    for transport in TRANSPORTS:
        few, many = (measure(transport, k, args.calls) for k in ROUNDS)
        rows.append((transport, few, many, (many - few) / (ROUNDS[1] - ROUNDS[0])))
    table = "\n".join(
        [f"`bench/collective_rounds.py` ({time.strftime('%Y-%m-%d')}): 2 ranks, alltoall of "
         f"1 KiB, {args.calls} timed steps", "",
         f"| transport | {ROUNDS[0]} round(s), ms/step | {ROUNDS[1]} rounds, ms/step "
         "| ms per round |", "| --- | ---: | ---: | ---: |"]
        + [f"| {t} | {few:.3f} | {many:.3f} | {per:.3f} |" for t, few, many, per in rows])
    print(table)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "collective_rounds.md").write_text(table + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.bar([row[0] for row in rows], [row[-1] for row in rows])
    axis.set_ylabel("ms per dependent round")
    axis.set_title("One alltoall round, 2 ranks")
    figure.tight_layout()
    figure.savefig(out / "collective_rounds.png", dpi=120)


if __name__ == "__main__":
    main()

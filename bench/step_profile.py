"""Where des-tf's step time goes: `python -m des_tf.train --profile_steps` on DeepFM (or
--model) over the Criteo-like and the industrial-like generated workloads, in one
process and on 2 ranks (same global batch), one table per run in
<out_dir>/step_profile.md (the tables des_tf.cli.profile prints). From the repository
root:

    .venv/bin/python bench/step_profile.py               # DeepFM, both workloads
    .venv/bin/python bench/step_profile.py --model=lr --rows=20000 --steps=20
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.compare import MODEL_FLAGS, WORKLOADS, child_env  # noqa: E402

SUMMARY = "DES_TF_SUMMARY "
RANK_PREFIX = re.compile(r"^\[\d+\]<std(out|err)>:")  # horovodrun's per-rank prefix


def run(args, workload: str, ranks: int) -> tuple[str, dict]:
    """One profiled training run: (its profile table, its summary)."""
    multi_hot = WORKLOADS[workload]
    train = [sys.executable, "-m", "des_tf.train", f"--model={args.model}", *MODEL_FLAGS,
             f"--synthetic_rows={args.rows}", f"--data_dir={args.data_dir}",
             *([f"--synthetic_multi_hot={','.join(multi_hot)}"] if multi_hot else []),
             f"--steps={args.steps}", f"--profile_steps={args.profile_steps}",
             f"--profile_dir={REPO_ROOT}/build/profile/{workload}-n{ranks}", "--log_every=0",
             f"--batch_size={args.global_batch // ranks}", f"--plan={args.plan}"]
    command = train if ranks == 1 else [
        os.path.join(os.path.dirname(sys.executable), "horovodrun"), "-np", str(ranks), "-H",
        f"localhost:{ranks}", "--gloo", *train]
    done = subprocess.run(command, cwd=REPO_ROOT, env=child_env(ranks), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=args.timeout_s)
    lines = [RANK_PREFIX.sub("", line) for line in done.stdout.splitlines()]
    summaries = [line.split(SUMMARY, 1)[1] for line in lines if SUMMARY in line]
    if done.returncode or not summaries:
        raise RuntimeError(f"{' '.join(command)} failed:\n" + "\n".join(lines[-20:]))
    return "\n".join(line for line in lines if line.startswith("|")), json.loads(summaries[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--plan", default="auto")
    parser.add_argument("--rows", type=int, default=40000)
    parser.add_argument("--global_batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--profile_steps", type=int, default=20)
    parser.add_argument("--timeout_s", type=int, default=900)
    parser.add_argument("--data_dir", default=str(REPO_ROOT / "build" / "compare_data"))
    parser.add_argument("--out_dir", default=str(REPO_ROOT / "bench" / "results"))
    args = parser.parse_args()
    sections = [f"`bench/step_profile.py {' '.join(sys.argv[1:])}` "
                f"({time.strftime('%Y-%m-%d')}): {args.model}, plan {args.plan}, global batch "
                f"{args.global_batch}, steps 6-{5 + args.profile_steps} of {args.steps}.\n"]
    for workload in WORKLOADS:
        for ranks in (1, 2):
            started = time.monotonic()
            table, summary = run(args, workload, ranks)
            print(f"{workload}, {ranks} rank(s): {time.monotonic() - started:.0f} s",
                  file=sys.stderr, flush=True)
            sections.append(f"### {workload}, {ranks} rank(s): {summary['samples_per_s']:,.0f} "
                            f"samples/s over the run\n\n{table}\n")
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    Path(args.out_dir, "step_profile.md").write_text("\n".join(sections))
    print("\n".join(sections))


if __name__ == "__main__":
    main()

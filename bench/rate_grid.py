"""Held-out AUC at equal samples against the learning rate: des-tf and the parameter
server, each over the same grid of rates, so that each is compared at its own best.

For every base rate r of --rates, one `bench/compare.py --modes=single,ps` run per
workload (DeepFM, one pass over the generated lines by default) with the table and
linear learning rates at r: each of the PS's asynchronous workers updates per local
batch at r, des-tf once per global batch at --sync_lr_scale x r (compare.py's rule).
`single` stands for des-tf: N ranks equal one process (tests/test_des_multirank), and
one process costs the grid half the time. Writes <out_dir>/rate_grid.{md,json,png}.
From the repository root:

    .venv/bin/python bench/rate_grid.py                    # ~22 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.compare import LEARNING_RATES, RANKS  # noqa: E402

SYSTEMS = {"single": "des-tf", "ps": "PS"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0.1,0.2,0.3,0.4,0.6,0.8",
                        help="comma-separated base table and linear learning rates (the PS "
                             "workers')")
    parser.add_argument("--dense_learning_rate", type=float, default=LEARNING_RATES["dense"],
                        help="the PS workers' dense (Adam) rate, des-tf's x --sync_lr_scale")
    parser.add_argument("--sync_lr_scale", type=float, default=RANKS,
                        help="compare.py's --sync_lr_scale")
    parser.add_argument("--workloads", default="industrial,criteo")
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--rows", type=int, default=300000)
    parser.add_argument("--steps", type=int, default=130,
                        help="global batches of 2048: 130 is one pass over 90%% of 300k lines")
    parser.add_argument("--out_dir", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    args.rates = [float(rate) for rate in args.rates.split(",")]
    return args


def grid_point(args, rate: float, scratch: Path) -> list[dict]:
    """compare.py's runs (single and ps, every workload) at base rate `rate`."""
    out_dir = scratch / f"rate-{rate:g}"
    command = [sys.executable, str(REPO_ROOT / "bench" / "compare.py"), f"--models={args.model}",
               f"--workloads={args.workloads}", "--modes=single,ps", f"--rows={args.rows}",
               f"--steps={args.steps}", "--warmup_steps=10", f"--table_learning_rate={rate:g}",
               f"--linear_learning_rate={rate:g}",
               f"--dense_learning_rate={args.dense_learning_rate:g}",
               f"--sync_lr_scale={args.sync_lr_scale:g}", f"--out_dir={out_dir}"]
    subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    runs = json.loads((out_dir / "compare.json").read_text())["runs"]
    scale = {"single": args.sync_lr_scale, "ps": 1.0}
    return [{"workload": run["workload"], "system": SYSTEMS[run["mode"]], "base_rate": rate,
             "table_rate": rate * scale[run["mode"]], "status": run["status"],
             "eval_auc": run.get("eval_auc"), "eval_logloss": run.get("eval_logloss")}
            for run in runs]


def best(rows: list[dict], workload: str, system: str) -> dict | None:
    ok = [r for r in rows if r["workload"] == workload and r["system"] == system
          and r["status"] == "ok"]
    return max(ok, key=lambda r: r["eval_auc"], default=None)


def markdown(rows: list[dict], args) -> str:
    out = []
    for workload in args.workloads.split(","):
        out += [f"### {workload} {args.model}\n",
                "| base rate | des-tf rate | des-tf AUC | des-tf log loss | PS AUC | "
                "PS log loss | des-tf - PS |", "|" + " ---: |" * 7]
        for rate in args.rates:
            pair = {r["system"]: r for r in rows if r["workload"] == workload
                    and r["base_rate"] == rate and r["status"] == "ok"}
            des, ps = pair.get("des-tf"), pair.get("PS")
            cells = [f"{rate:g}", f"{rate * args.sync_lr_scale:g}"]
            for run in (des, ps):
                cells += ([f"{run['eval_auc']:.4f}", f"{run['eval_logloss']:.4f}"] if run
                          else ["failed", ""])
            cells.append(f"{des['eval_auc'] - ps['eval_auc']:+.4f}" if des and ps else "")
            out.append("| " + " | ".join(cells) + " |")
        des, ps = best(rows, workload, "des-tf"), best(rows, workload, "PS")
        if des and ps:
            out.append(f"\nBest of each: des-tf {des['eval_auc']:.4f} at table rate "
                       f"{des['table_rate']:g}, PS {ps['eval_auc']:.4f} at {ps['table_rate']:g}: "
                       f"des-tf - PS {des['eval_auc'] - ps['eval_auc']:+.4f}.\n")
    out.append(f"{args.steps} steps of {RANKS} x 1024 samples (PS: {RANKS} asynchronous "
               f"workers of 1024), held-out AUC on 10% of {args.rows:,} generated lines; "
               "table (Adagrad) and linear (FTRL) rates = the rate shown, dense (Adam) "
               f"{args.dense_learning_rate:g} per PS worker, x{args.sync_lr_scale:g} for "
               "des-tf.")
    return "\n".join(out) + "\n"


def plot(rows: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = args.workloads.split(",")
    figure, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.2),
                                squeeze=False)
    for workload, axis in zip(workloads, axes[0]):
        for system in SYSTEMS.values():
            runs = sorted((r for r in rows if r["workload"] == workload
                           and r["system"] == system and r["status"] == "ok"),
                          key=lambda r: r["table_rate"])
            axis.plot([r["table_rate"] for r in runs], [r["eval_auc"] for r in runs],
                      marker="o", label=system)
        axis.set_xscale("log")
        axis.set_xlabel("table and linear learning rate (per update)")
        axis.set_ylabel("held-out AUC")
        axis.set_title(f"{workload} {args.model}, {args.steps} steps")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started, rows = time.time(), []
    with tempfile.TemporaryDirectory(prefix="rate_grid-") as scratch:
        for index, rate in enumerate(args.rates, 1):
            print(f"rate_grid: [{index}/{len(args.rates)}] base rate {rate:g} ...",
                  file=sys.stderr, flush=True)
            rows += grid_point(args, rate, Path(scratch))
    wall_s = round(time.time() - started)
    command = " ".join(["bench/rate_grid.py", *(argv if argv is not None else sys.argv[1:])])
    report = markdown(rows, args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "rate_grid.json").write_text(json.dumps(
        {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"), "wall_s": wall_s,
         "runs": rows}, indent=1))
    (args.out_dir / "rate_grid.md").write_text(
        f"`{command}` ({time.strftime('%Y-%m-%d')}, {wall_s} s)\n\n{report}")
    plot(rows, args, args.out_dir / "rate_grid.png")
    print(report)


if __name__ == "__main__":
    main()

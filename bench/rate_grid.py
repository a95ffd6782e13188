"""Held-out AUC at equal samples against the learning rates: des-tf and the parameter
server, each over the same grid of rates, so that each is compared at its own best.

For every base table rate r of --rates and dense rate d of --dense_rates,
`bench/compare.py --modes=single` and `--modes=ps` on every workload (DeepFM, one pass over
the generated lines by default) with the table and linear (FTRL) rates at r and the dense
(Adam) rate at d: each of the PS's asynchronous workers updates per local batch of 1024 at
those rates, des-tf once per global batch of --sync_batch at --sync_lr_scale x them
(compare.py's rule), over as many samples.
`single` stands for des-tf: N ranks equal one process (tests/test_des_multirank), and
one process costs the grid half the time. With --repeats=N every point runs N times, the
i-th time with weights initialised from seed --seed + i in both systems, and the report
shows the median AUC and its range: the PS's asynchronous updates make its AUC move by a
few thousandths from run to run, and the seeds show how far des-tf's moves with its
initial weights (one seed would make its one run look exact). Writes
<out_dir>/rate_grid.{md,json,png}. From the repository root:

    .venv/bin/python bench/rate_grid.py                    # ~22 min on 2 cores
    .venv/bin/python bench/rate_grid.py --render=bench/results/rate_grid.json   # report only
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.compare import LEARNING_RATES, RANKS  # noqa: E402

SYSTEMS = {"single": "des-tf", "ps": "PS"}
WORKER_BATCH = 1024  # samples per PS worker and update (compare.py's --batch_size)


def rate_list(text: str) -> list[float]:
    """argparse type of --rates and --dense_rates: comma-separated floats."""
    return [float(rate) for rate in text.split(",")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rate_list, default="0.1,0.2,0.3,0.4,0.6,0.8",
                        help="comma-separated base table and linear learning rates (the PS "
                             "workers')")
    parser.add_argument("--dense_rates", type=rate_list, default=str(LEARNING_RATES["dense"]),
                        help="comma-separated base dense (Adam) rates (the PS workers')")
    parser.add_argument("--sync_lr_scale", type=float, default=RANKS,
                        help="compare.py's --sync_lr_scale")
    parser.add_argument("--workloads", default="industrial,criteo")
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--rows", type=int, default=300000)
    parser.add_argument("--steps", type=int, default=130,
                        help=f"steps of the {RANKS} PS workers (batches of {WORKER_BATCH} "
                             "each): 130 is one pass over 90%% of 300k lines")
    parser.add_argument("--sync_batch", type=int, default=RANKS * WORKER_BATCH,
                        help="des-tf's global batch, one synchronous update each; it runs "
                             "the samples the PS runs. Set it to the PS worker's batch "
                             f"({WORKER_BATCH}, with --sync_lr_scale=1) to compare the two "
                             "at equal updates as well")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per grid point, the i-th with seed --seed + i; the report "
                             "shows their median")
    parser.add_argument("--seed", type=int, default=0, help="the first repeat's seed")
    parser.add_argument("--out_dir", type=Path, default=REPO_ROOT / "bench" / "results")
    parser.add_argument("--render", type=Path,
                        help="re-write the report (md, png) beside this rate_grid.json from "
                             "its runs and the flags of its command; runs nothing")
    args = parser.parse_args(argv)
    if args.sync_batch <= 0 or args.sync_batch % RANKS or samples(args) % args.sync_batch:
        parser.error(f"--sync_batch must be a positive multiple of {RANKS} (ranks) that "
                     f"divides the PS's {samples(args):,} samples, got {args.sync_batch}")
    return args


def grid_point(args, rate: float, dense_rate: float, seed: int, scratch: Path) -> list[dict]:
    """compare.py's runs (single and ps, every workload) at base rates `rate` (table and
    linear) and `dense_rate`, weights initialised from `seed`."""
    rows = []
    for mode, batch_size, steps, scale in (
            ("single", args.sync_batch // RANKS, sync_steps(args), args.sync_lr_scale),
            ("ps", WORKER_BATCH, args.steps, 1.0)):
        out_dir = scratch / f"rate-{rate:g}-{dense_rate:g}-seed-{seed}-{mode}"
        command = [sys.executable, str(REPO_ROOT / "bench" / "compare.py"),
                   f"--models={args.model}", f"--workloads={args.workloads}", f"--modes={mode}",
                   f"--rows={args.rows}", f"--batch_size={batch_size}", f"--steps={steps}",
                   "--warmup_steps=10", f"--table_learning_rate={rate:g}",
                   f"--linear_learning_rate={rate:g}", f"--dense_learning_rate={dense_rate:g}",
                   f"--sync_lr_scale={args.sync_lr_scale:g}", f"--seed={seed}",
                   f"--out_dir={out_dir}"]
        subprocess.run(command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        rows += [{"workload": run["workload"], "system": SYSTEMS[mode], "base_rate": rate,
                  "dense_base_rate": dense_rate, "table_rate": rate * scale,
                  "dense_rate": dense_rate * scale, "seed": seed, "status": run["status"],
                  "eval_auc": run.get("eval_auc"), "eval_logloss": run.get("eval_logloss")}
                 for run in json.loads((out_dir / "compare.json").read_text())["runs"]]
    return rows


def samples(args) -> int:
    """The samples of one grid run: the PS workers' --steps, and des-tf's as many."""
    return args.steps * RANKS * WORKER_BATCH


def sync_steps(args) -> int:
    """des-tf's steps of --sync_batch: as many samples as the PS's --steps."""
    return samples(args) // args.sync_batch


def medians(rows: list[dict]) -> list[dict]:
    """One row per (workload, system, base rates): the median AUC and log loss of its
    successful repeats, with the AUC's range; points with no successful run are left out."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if row["status"] == "ok":
            key = (row["workload"], row["system"], row["base_rate"], row["dense_base_rate"])
            groups.setdefault(key, []).append(row)
    return [{**runs[0], "runs": len(runs),
             "seeds": sorted({r.get("seed", 0) for r in runs}),
             "eval_auc": statistics.median(r["eval_auc"] for r in runs),
             "eval_logloss": statistics.median(r["eval_logloss"] for r in runs),
             "auc_range": (min(r["eval_auc"] for r in runs), max(r["eval_auc"] for r in runs))}
            for runs in groups.values()]


def best(points: list[dict], workload: str, system: str) -> dict | None:
    """The point of `medians` with the highest AUC."""
    return max((p for p in points if p["workload"] == workload and p["system"] == system),
               key=lambda p: p["eval_auc"], default=None)


def auc_cell(point: dict) -> str:
    low, high = point["auc_range"]
    return f"{point['eval_auc']:.4f}" + (f" ({low:.4f}-{high:.4f})" if point["runs"] > 1 else "")


def markdown(points: list[dict], args) -> str:
    """The report of the points of `medians`: a table per workload and each system's best."""
    out = []
    for workload in args.workloads.split(","):
        out += [f"### {workload} {args.model}\n",
                "| base rate | base dense rate | des-tf AUC | des-tf log loss | PS AUC | "
                "PS log loss | des-tf - PS |", "|" + " ---: |" * 7]
        for rate, dense_rate in itertools.product(args.rates, args.dense_rates):
            pair = {p["system"]: p for p in points if p["workload"] == workload
                    and (p["base_rate"], p["dense_base_rate"]) == (rate, dense_rate)}
            des, ps = pair.get("des-tf"), pair.get("PS")
            cells = [f"{rate:g}", f"{dense_rate:g}"]
            for run in (des, ps):
                cells += ([auc_cell(run), f"{run['eval_logloss']:.4f}"] if run
                          else ["failed", ""])
            cells.append(f"{des['eval_auc'] - ps['eval_auc']:+.4f}" if des and ps else "")
            out.append("| " + " | ".join(cells) + " |")
        des, ps = best(points, workload, "des-tf"), best(points, workload, "PS")
        if des and ps:
            out.append(f"\nBest of each: des-tf {des['eval_auc']:.4f} at rates "
                       f"{des['table_rate']:g} / {des['dense_rate']:g}, PS "
                       f"{ps['eval_auc']:.4f} at {ps['table_rate']:g} / {ps['dense_rate']:g}: "
                       f"des-tf - PS {des['eval_auc'] - ps['eval_auc']:+.4f}.\n")
    seeds = sorted(set().union(*(p["seeds"] for p in points)))
    repeats = (f"; median of {args.repeats} runs (range), seed{'s' * (len(seeds) > 1)} "
               f"{', '.join(map(str, seeds))}" if args.repeats > 1 else "")
    out.append(f"des-tf: {sync_steps(args)} steps of {args.sync_batch} samples; PS: {RANKS} "
               f"asynchronous workers, {args.steps} steps of {WORKER_BATCH} each; "
               f"held-out AUC on 10% of {args.rows:,} generated lines; "
               "table (Adagrad) and linear (FTRL) rates = the base rate, dense (Adam) rate = "
               f"the base dense rate, per PS worker; x{args.sync_lr_scale:g} for "
               f"des-tf{repeats}. Best: table / dense rate per update.")
    return "\n".join(out) + "\n"


def plot(points: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = args.workloads.split(",")
    figure, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.2),
                                squeeze=False)
    for workload, axis in zip(workloads, axes[0]):
        for system, dense_rate in itertools.product(SYSTEMS.values(), args.dense_rates):
            runs = sorted((p for p in points if p["workload"] == workload
                           and p["system"] == system and p["dense_base_rate"] == dense_rate),
                          key=lambda p: p["base_rate"])
            label = system if len(args.dense_rates) == 1 else f"{system}, base dense {dense_rate:g}"
            axis.plot([r["base_rate"] for r in runs], [r["eval_auc"] for r in runs],
                      marker="o", label=label)
        axis.set_xscale("log")
        axis.set_xlabel("base table and linear rate (the PS workers'; des-tf "
                        f"x{args.sync_lr_scale:g})")
        axis.set_ylabel("held-out AUC")
        axis.set_title(f"{workload} {args.model}, {samples(args):,} samples")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(args, record: dict, out_dir: Path) -> str:
    """rate_grid.{md,png} in `out_dir` from `record` (rate_grid.json's content) run with
    `args`; returns the report."""
    points = medians(record["runs"])
    report = markdown(points, args)
    (out_dir / "rate_grid.md").write_text(
        f"`{record['command']}` ({record['date'][:10]}, {record['wall_s']} s)\n\n{report}")
    plot(points, args, out_dir / "rate_grid.png")
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        record = json.loads(args.render.read_text())
        print(write_report(parse_args(record["command"].split()[1:]), record,
                           args.render.parent))
        return
    started, rows = time.time(), []
    with tempfile.TemporaryDirectory(prefix="rate_grid-") as scratch:
        grid = list(itertools.product(range(args.repeats), args.rates, args.dense_rates))
        for index, (repeat, rate, dense_rate) in enumerate(grid, 1):
            seed = args.seed + repeat
            print(f"rate_grid: [{index}/{len(grid)}] base rates {rate:g} / {dense_rate:g}, "
                  f"seed {seed} ...", file=sys.stderr, flush=True)
            rows += grid_point(args, rate, dense_rate, seed, Path(scratch) / f"repeat-{repeat}")
    command = " ".join(["bench/rate_grid.py", *(argv if argv is not None else sys.argv[1:])])
    record = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M"),
              "wall_s": round(time.time() - started), "runs": rows}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "rate_grid.json").write_text(json.dumps(record, indent=1))
    print(write_report(args, record, args.out_dir))


if __name__ == "__main__":
    main()

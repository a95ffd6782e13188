"""Scaling on paper: bytes per sample of DES, sparse aggregation (alltoall), replicated
tables and a parameter server for N = 2 ... 512 ranks, from the cost model.

Uses `des_tf.comm.cost` (validated against the byte counters by
tests/test_cost_model.py) on two paper-scale workloads, for des_tf.models' LR,
Wide&Deep and DeepFM (embedding dim 16, MLP 400-400-400, 1024 samples per rank):

- criteo: 26 one-hot categorical fields with Criteo's cardinalities and Zipf(1.1) ids
  (des_tf.data.synthetic's law) + 13 dense features;
- industrial: criteo + four multi-hot sum-pooled fields with mean lengths 200, 100, 50
  and 20 ids per sample over vocabularies of 10M, 5M, 2M and 1M Zipf(1.1) ids (user
  history, clicked items, query terms, ad tags).

Unique-id ratios (distinct ids per rank batch / id occurrences) and distinct ids per
sample are the Zipf expectations (cost.zipf_expected_unique). Plans (bytes per sample =
bytes one rank sends + receives per step / B):

  des[allgather|alltoall|replicated]  dense DES partials, ids in that input mode
  alltoall     sparse aggregation (pooled non-empty partials + indices), alltoall ids
  ps           parameter server: pull / push U unique rows and all dense weights
  auto         each table (one embedding + one linear table, as des_tf.models builds
               them) takes cost.choose_plan's cheapest of des / alltoall / replicated
               / rows (replicated only for tables of at most 64 MiB), alltoall input mode
  auto/field   the same with one table per field (tiny fields get replicated)

Prints progress to stderr and a markdown report (bytes per sample, crossovers) to
stdout, and writes `<out_dir>/scaling.json` and `<out_dir>/scaling.png`. Run from the
repository root:

    .venv/bin/python bench/scaling.py

(`--help` lists the flags, e.g. `--ranks 8 64 512 --models deepfm` for a quick run.)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# This checkout's des_tf, whichever one the virtual environment has installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from des_tf.comm import cost  # noqa: E402
from des_tf.data.synthetic import CRITEO_CARDINALITIES  # noqa: E402

MODELS = ("lr", "wide_deep", "deepfm")
MODEL_TITLES = {"lr": "LR", "wide_deep": "Wide&Deep", "deepfm": "DeepFM"}
WORKLOADS = ("criteo", "industrial")
# (name, mean ids per sample, vocabulary) of the industrial workload's multi-hot fields
MULTI_HOT = (("user_history", 200, 10_000_000), ("clicked_items", 100, 5_000_000),
             ("query_terms", 50, 2_000_000), ("ad_tags", 20, 1_000_000))
PLANS = ("des[allgather]", "des[alltoall]", "des[replicated]", "alltoall", "ps", "auto",
         "auto/field")
PLAN_STYLES = {"des[allgather]": ("tab:red", "-"), "des[alltoall]": ("tab:red", "--"),
               "des[replicated]": ("tab:red", ":"), "alltoall": ("tab:blue", "-"),
               "ps": ("black", "-"), "auto": ("tab:green", "-"),
               "auto/field": ("tab:green", "--")}
NUM_DENSE = 13
REPLICATED_MAX_BYTES = 64 * 2**20


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- workloads


@dataclasses.dataclass(frozen=True)
class FieldStats:
    """One field's statistics at the benchmark's batch size."""

    name: str
    ids_per_sample: float
    distinct_per_sample: float
    vocabulary: int
    batch: int  # samples per rank
    unique_per_batch: float  # expected distinct ids in one rank's batch

    @property
    def field(self) -> cost.Field:
        return cost.Field(self.ids_per_sample, self.distinct_per_sample)

    @property
    def unique_ratio(self) -> float:
        return self.unique_per_batch / max(self.ids_per_sample * self.batch, 1e-12)


def workload_fields(workload: str, batch: int, zipf_a: float) -> list[FieldStats]:
    """Every field of a workload with its Zipf statistics at `batch` samples per rank."""
    specs = [(f"C{i + 1}", 1, v) for i, v in enumerate(CRITEO_CARDINALITIES)]
    if workload == "industrial":
        specs += list(MULTI_HOT)
    fields = []
    for name, length, vocabulary in specs:
        distinct = (cost.zipf_expected_unique(length, vocabulary, zipf_a) if length > 1
                    else 1.0)
        unique = cost.zipf_expected_unique(batch * length, vocabulary, zipf_a)
        fields.append(FieldStats(name, float(length), distinct, vocabulary, batch, unique))
    return fields


def table_ratio(fields: list[FieldStats], batch: int) -> float:
    """Unique ratio of one table holding all `fields` (ids salted per field)."""
    return (sum(f.unique_per_batch for f in fields)
            / sum(f.ids_per_sample * batch for f in fields))


def model_config(model: str, fields: list[FieldStats], args: argparse.Namespace, ranks: int,
                 input_mode: str, per_field: bool = False) -> cost.Config:
    """The cost-model config of `model` on `ranks` ranks: one embedding + one linear
    table over all fields (des_tf.models), or with `per_field` one of each per field."""
    if per_field:
        ops = []
        for f in fields:
            for op in cost.model_operators(model, [f.field], dim=args.dim,
                                           unique_ratio=f.unique_ratio,
                                           vocabulary=f.vocabulary):
                ops.append(dataclasses.replace(
                    op, name=f"{op.name}:{f.name}",
                    ids_from=f"{op.ids_from}:{f.name}" if op.ids_from else ""))
        ops = tuple(ops)
    else:
        ops = cost.model_operators(model, [f.field for f in fields], dim=args.dim,
                                   unique_ratio=table_ratio(fields, args.batch_size),
                                   vocabulary=sum(f.vocabulary for f in fields))
    dense = cost.model_dense_params(model, len(fields), NUM_DENSE, dim=args.dim,
                                    hidden=args.hidden)
    return cost.Config(args.batch_size, ranks, ops, dense_params=dense,
                       metric_floats=args.metric_floats, input_mode=input_mode)


def plan_traffic(plan: str, model: str, fields: list[FieldStats], args: argparse.Namespace,
                 ranks: int) -> tuple[cost.Traffic, dict[str, str]]:
    """(traffic, {table: plan}) of one named plan of PLANS."""
    if plan.startswith("des["):
        cfg = model_config(model, fields, args, ranks, plan[4:-1] + "_ids")  # the input mode
        choice = {op.name: "des" for op in cfg.operators}
    elif plan in ("alltoall", "ps"):
        cfg = model_config(model, fields, args, ranks, "alltoall_ids")
        choice = {op.name: plan for op in cfg.operators}
    else:
        cfg = model_config(model, fields, args, ranks, "alltoall_ids",
                           per_field=plan == "auto/field")
        choice = cost.auto_plans(cfg, replicated_max_bytes=REPLICATED_MAX_BYTES)
    return cost.step_traffic(cfg, choice), choice


# ---------------------------------------------------------------------------- analysis


def crossover(curve: dict[int, float], other: dict[int, float]) -> Optional[int]:
    """Smallest N at which `curve` costs more than `other` (None: never up to max N)."""
    for n in sorted(curve):
        if curve[n] > other[n]:
            return n
    return None


def run_all(args: argparse.Namespace) -> dict:
    results = {"workloads": {}}
    search = list(range(2, max(args.ranks) + 1))
    for workload in args.workloads:
        progress(f"{workload}: Zipf statistics of {args.batch_size} samples per rank")
        fields = workload_fields(workload, args.batch_size, args.zipf_a)
        entry = {"fields": [dataclasses.asdict(f) | {"unique_ratio": f.unique_ratio}
                            for f in fields],
                 "table_unique_ratio": table_ratio(fields, args.batch_size), "models": {}}
        for model in args.models:
            progress(f"{workload} {model}: {len(PLANS)} plans, N = 2..{max(args.ranks)}")
            curves = {plan: {} for plan in PLANS}
            detail = {plan: {} for plan in PLANS}
            for n in search:
                for plan in PLANS:
                    if plan == "auto/field" and n not in args.ranks:
                        continue  # many small tables: evaluated at the table's N only
                    traffic, choice = plan_traffic(plan, model, fields, args, n)
                    curves[plan][n] = traffic.per_sample
                    if n in args.ranks:
                        detail[plan][n] = {
                            "bytes_per_sample": traffic.per_sample,
                            "by_part": {k: v / args.batch_size
                                        for k, v in traffic.by_part().items()},
                            "by_kind_sent": traffic.by_kind("sent"),
                            "tables": _count_choices(choice) if plan.startswith("auto")
                            else None}
            des_plans = [p for p in PLANS if p.startswith("des[")]
            cross = {f"{p} > {q}": crossover(curves[p], curves[q])
                     for p in des_plans for q in ("alltoall", "ps")}
            cross["auto > ps"] = crossover(curves["auto"], curves["ps"])
            entry["models"][model] = {
                "dense_params": cost.model_dense_params(model, len(fields), NUM_DENSE,
                                                        dim=args.dim, hidden=args.hidden),
                "curves": {p: {str(n): v for n, v in c.items()} for p, c in curves.items()},
                "at": {p: {str(n): v for n, v in d.items()} for p, d in detail.items()},
                "crossovers": cross}
        results["workloads"][workload] = entry
    return results


def _rounded(x):
    """Floats to 1 decimal (bytes), recursively, for a readable JSON file."""
    if isinstance(x, float):
        return round(x, 1) if abs(x) >= 1 else round(x, 4)
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _count_choices(choice: dict[str, str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for plan in choice.values():
        out[plan] = out.get(plan, 0) + 1
    return out


# ---------------------------------------------------------------------------- output


def _kb(x: float) -> str:
    return f"{x / 1000:.1f}" if x < 100_000 else f"{x / 1000:.0f}"


def header(args: argparse.Namespace) -> str:
    return "\n".join([
        "# des-tf scaling on paper (cost model)", "",
        f"Bytes each rank sends + receives per step, divided by its {args.batch_size} samples "
        f"(kB per sample; 1 kB = 1000 bytes). Embedding dim {args.dim}, MLP "
        f"{'-'.join(map(str, args.hidden))}, {NUM_DENSE} dense features, Zipf({args.zipf_a}) "
        f"ids, int64 keys, float32 values. Command: `.venv/bin/python bench/scaling.py`."])


def bytes_table(results: dict, args: argparse.Namespace, workload: str) -> str:
    entry = results["workloads"][workload]
    lines = [f"## {workload} (table unique ratio {entry['table_unique_ratio']:.3f})", "",
             "| model | plan | " + " | ".join(f"N={n}" for n in args.ranks) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in args.ranks) + " |"]
    for model, m in entry["models"].items():
        for plan in PLANS:
            cells = [_kb(m["at"][plan][str(n)]["bytes_per_sample"]) for n in args.ranks]
            lines.append(f"| {MODEL_TITLES[model]} | {plan} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def auto_table(results: dict, args: argparse.Namespace) -> str:
    lines = ["## What auto picks (tables per plan)", "",
             "| workload | model | plan | " + " | ".join(f"N={n}" for n in args.ranks) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in args.ranks) + " |"]
    for workload, entry in results["workloads"].items():
        for model, m in entry["models"].items():
            for plan in ("auto", "auto/field"):
                cells = [" ".join(f"{k}:{v}" for k, v in
                                  sorted(m["at"][plan][str(n)]["tables"].items()))
                         for n in args.ranks]
                lines.append(f"| {workload} | {MODEL_TITLES[model]} | {plan} | "
                             + " | ".join(cells) + " |")
    return "\n".join(lines)


def crossover_table(results: dict) -> str:
    keys = next(iter(next(iter(results["workloads"].values()))["models"].values()))[
        "crossovers"].keys()
    lines = ["## Crossovers: smallest N at which the first plan moves more bytes than the "
             "second (`-`: not up to the largest N; 2: never cheaper)", "",
             "| workload | model | " + " | ".join(keys) + " |",
             "| --- | --- | " + " | ".join("---:" for _ in keys) + " |"]
    for workload, entry in results["workloads"].items():
        for model, m in entry["models"].items():
            cells = ["-" if v is None else str(v) for v in m["crossovers"].values()]
            lines.append(f"| {workload} | {MODEL_TITLES[model]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, args: argparse.Namespace, path: Path) -> None:
    workloads = list(results["workloads"])
    fig, axes = plt.subplots(len(workloads), len(args.models), squeeze=False,
                             figsize=(4.6 * len(args.models), 3.8 * len(workloads)))
    for i, workload in enumerate(workloads):
        for j, model in enumerate(args.models):
            ax = axes[i][j]
            m = results["workloads"][workload]["models"][model]
            for plan in PLANS:
                points = sorted((int(n), v) for n, v in m["curves"][plan].items())
                color, style = PLAN_STYLES[plan]
                ax.plot([n for n, _ in points], [v / 1000 for _, v in points], style,
                        color=color, label=plan, marker="o" if plan == "auto/field" else None,
                        markersize=3)
            cross = m["crossovers"]["des[alltoall] > alltoall"]
            if cross:
                ax.axvline(cross, color="grey", linewidth=0.8, linestyle=":")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{workload}: {MODEL_TITLES[model]}")
            ax.set_xlabel("ranks N")
            ax.set_ylabel("kB per sample (sent + received)")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, nargs="+",
                        default=[2, 8, 16, 32, 64, 128, 256, 512],
                        help="N shown in the table (crossovers are searched over 2..max)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--batch_size", type=int, default=1024, help="samples per rank")
    parser.add_argument("--dim", type=int, default=16, help="embedding dim")
    parser.add_argument("--hidden", type=int, nargs="+", default=[400, 400, 400])
    parser.add_argument("--zipf_a", type=float, default=1.1, help="Zipf exponent (> 1)")
    parser.add_argument("--metric_floats", type=int, default=802,
                        help="metric floats summed per step (loss mean 2 + AUC 800 if read "
                             "every step, as an upper bound; 0 if only at epoch ends)")
    parser.add_argument("--out_dir", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    args.ranks = sorted(set(args.ranks))
    if args.ranks[0] < 1:
        parser.error("--ranks must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    start = time.monotonic()
    results = run_all(args)
    results["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    report = "\n\n".join([header(args)]
                         + [bytes_table(results, args, w) for w in results["workloads"]]
                         + [crossover_table(results), auto_table(results, args)])
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "scaling.json").write_text(json.dumps(_rounded(results), indent=1))
    plot(results, args, args.out_dir / "scaling.png")
    progress(f"wrote {args.out_dir / 'scaling.json'} and {args.out_dir / 'scaling.png'} "
             f"in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()

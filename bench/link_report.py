"""The report of a link-rate sweep (bench/compare.py --link): per workload and model,
samples/s and time-to-AUC of every mode at every rate, beside the PS at the same rate;
the predicted step time; the crossover rate where des-tf passes the PS.

Predicted step time at a rate r (bits/s) = B + max(W0, L - I):
- B, the run's CPU work per step: the machine's busy CPU time per step / its cores
  (/proc/stat), measured in the run itself, so it carries the 10-20% by which this
  shared machine's speed drifts over a sweep;
- W0, the waiting per step on an unlimited link: the same mode's step there minus its B
  (the ranks waiting for each other at the collective rounds, and the emulated path's
  own latency: no delay is added, the kernel has no netem);
- L, the link time: the bytes of the busiest direction of the busiest host per step
  (measured on eth0 at rate r) / (r / 8);
- I, one rank's input pipeline alone on one core (bench/input_time.py: reading and
  parsing its batch).
tf.data reads ahead of the step in its own threads, so while the step waits on the link
the cores read the next batches (I), and the ranks' waits for each other fall inside the
link's wait instead of adding to it: the link lengthens the step only where L - I
exceeds W0. T0 = B + W0 is the step the run would take on an unlimited link. Rows
recorded before busy CPU was (2026-12-02) take B = the unlimited run's step and W0 = 0
(so T0 + max(0, L - I)), and before I was, I = 0. It needs `unlimited` among the rates.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from bench.cluster.network import rate_bits

UNLIMITED = "unlimited"
ONE_PROCESS = "one process"
# bench/compare.py's modes that run in one process, on no link.
ONE_PROCESS_MODES = ("single", "tf", "keras")


def _rate(link: str) -> float:
    return math.inf if link == UNLIMITED else rate_bits(link)


def step_s(row: dict) -> float:
    return row["global_batch"] / row["samples_per_s"]


def link_s(row: dict) -> float:
    """L above: the busiest direction's bytes per step / the link rate."""
    return row["max_direction_bytes_per_step"] * 8 / _rate(row["link"])


class LinkModel(NamedTuple):
    """The docstring's model of one shaped run, in seconds per step."""
    busy_s: float  # B
    waits_s: float  # W0
    link_s: float  # L
    input_s: float  # I

    @property
    def base_s(self) -> float:
        """T0 = B + W0: the step on an unlimited link."""
        return self.busy_s + self.waits_s

    @property
    def predicted_s(self) -> float:
        """B + max(W0, L - I)."""
        return self.busy_s + max(self.waits_s, self.link_s - self.input_s)

    def transfer_hidden(self, measured_s: float) -> float:
        """The share of the link time per step (busiest direction's bytes / rate) that did
        not add to T0: (T0 + L - measured) / L. 0 is no overlap of transfers with compute
        or waiting; above 1 the step was shorter than T0."""
        return (self.base_s + self.link_s - measured_s) / self.link_s


def link_model(row: dict, unlimited: dict | None) -> LinkModel | None:
    """The model of `row`, given `unlimited` (the same mode's run on an unlimited link);
    None at unlimited, without bytes or without `unlimited`."""
    if (unlimited is None or row["link"] == UNLIMITED
            or "max_direction_bytes_per_step" not in row):
        return None
    if "busy_ms_per_step" in row and "busy_ms_per_step" in unlimited:
        busy_s = row["busy_ms_per_step"] / 1000
        waits_s = step_s(unlimited) - unlimited["busy_ms_per_step"] / 1000
    else:
        busy_s, waits_s = step_s(unlimited), 0.0
    return LinkModel(busy_s, waits_s, link_s(row), row.get("input_ms_per_step", 0.0) / 1000)


def auc_target(rows: list[dict], workload: str, model: str, drop: float) -> float | None:
    """The single run's last held-out AUC minus `drop`."""
    for row in rows:
        if (row["status"] == "ok" and row["mode"] == "single" and row["workload"] == workload
                and row["model"] == model and row.get("held_out_curve")):
            return row["held_out_curve"][-1]["auc"] - drop
    return None


def time_to_auc(row: dict, target: float | None) -> float | None:
    """Training seconds until the held-out AUC first reaches `target`; None if never."""
    if target is None:
        return None
    for point in row.get("held_out_curve") or []:
        if point["auc"] >= target:
            return point["train_s"]
    return None


def _fmt(value, spec: str = ",.0f", empty: str = "") -> str:
    return empty if value is None else format(value, spec)


def _ratio(a, b) -> str:
    return "" if a is None or not b else f"{a / b:.2f}"


def markdown(rows: list[dict], args) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    out = []
    for workload in args.workloads:
        for model in args.models:
            target = auc_target(ok, workload, model, args.auc_target_drop)
            group = [r for r in ok if r["workload"] == workload and r["model"] == model]
            index = {(r["mode"], r["link"]): r for r in group}
            out.append(f"### {workload} {model}: time-to-AUC target "
                       f"{_fmt(target, '.4f', 'none (no single run with --eval_every)')}\n")
            out.append("| link | mode | samples/s | / PS | eth0 bytes/step | busiest direction "
                       "bytes/step | step ms | busy ms | T0 ms | input ms | predicted ms | "
                       "predicted / measured | transfer hidden | time-to-AUC s | / PS | "
                       "eval AUC | AUC - PS |")
            out.append("| --- | --- |" + " ---: |" * 15)
            for row in group:
                one_process = row["mode"] in ONE_PROCESS_MODES
                link = ONE_PROCESS if one_process else row["link"]
                ps = index.get(("ps", row["link"]))
                unlimited = index.get((row["mode"], UNLIMITED))
                model = link_model(row, unlimited)
                measured = step_s(row)
                tta, ps_tta = time_to_auc(row, target), ps and time_to_auc(ps, target)
                out.append(
                    f"| {link} | {row['mode']} | {row['samples_per_s']:,.0f} | "
                    f"{_ratio(row['samples_per_s'], ps and ps['samples_per_s'])} | "
                    f"{'' if one_process else _fmt(row.get('eth0_bytes_per_step'))} | "
                    f"{'' if one_process else _fmt(row.get('max_direction_bytes_per_step'))} | "
                    f"{1000 * measured:.1f} | {_fmt(row.get('busy_ms_per_step'), '.1f')} | "
                    f"{_fmt(model and 1000 * model.base_s, '.1f')} | "
                    f"{_fmt(row.get('input_ms_per_step'), '.1f')} | "
                    f"{_fmt(model and 1000 * model.predicted_s, '.1f')} | "
                    f"{_ratio(model and model.predicted_s, measured)} | "
                    f"{_fmt(model and model.transfer_hidden(measured), '.0%')} | "
                    f"{_fmt(tta, '.1f', 'not reached')} | "
                    f"{_ratio(tta, ps_tta)} | {row['eval_auc']:.4f} | "
                    f"{'' if not ps else format(row['eval_auc'] - ps['eval_auc'], '+.4f')} |")
            out.append("")
            out.append(crossover_line(group))
            out.append("")
    failed = [r for r in rows if r["status"] != "ok"]
    for row in failed:
        out.append(f"- FAILED {row['workload']} {row['model']} {row['mode']} at "
                   f"{row['link']}: {row['note'][:200]}")
    out.append(f"\n{len(args.links)} link rates per host, {args.steps} steps of "
               f"{args.batch_size} samples per rank ({args.warmup_steps} warm-up steps left "
               f"out), held-out AUC every {args.eval_every} steps on {args.eval_batches} "
               f"global batches (evaluation time and bytes left out of the window). eth0 "
               f"bytes = rx + tx summed over the hosts (each byte counted once sent, once "
               f"received). " + __doc__.split("\n\n")[1].replace("\n", " ")
               + "\n\nTransfer hidden: " + " ".join(LinkModel.transfer_hidden.__doc__.split()))
    return "\n".join(out) + "\n"


def crossover_line(group: list[dict]) -> str:
    """For each des-tf mode: the rates at which it is at least as fast as the PS."""
    ps = {r["link"]: r for r in group if r["mode"] == "ps"}
    if not ps:
        return "Crossover: no PS run in this sweep."
    parts = []
    for mode in dict.fromkeys(r["mode"] for r in group if r["mode"] not in
                              ("ps", *ONE_PROCESS_MODES)):
        faster = sorted((r["link"] for r in group if r["mode"] == mode and r["link"] in ps
                         and r["samples_per_s"] >= ps[r["link"]]["samples_per_s"]), key=_rate)
        slower = sorted((r["link"] for r in group if r["mode"] == mode and r["link"] in ps
                         and r["samples_per_s"] < ps[r["link"]]["samples_per_s"]), key=_rate)
        parts.append(f"{mode} >= PS at {', '.join(faster) or 'no rate'}; slower at "
                     f"{', '.join(slower) or 'no rate'}")
    return "Crossover: " + "; ".join(parts) + "."


def plot(rows: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    groups = [(w, m) for w in args.workloads for m in args.models
              if any(r["workload"] == w and r["model"] == m for r in ok)]
    if not groups:
        return
    finite = [_rate(r["link"]) for r in ok if r["link"] not in (UNLIMITED,)
              and r["mode"] not in ONE_PROCESS_MODES]
    top = 2 * max(finite) if finite else 1e10  # where `unlimited` is drawn
    figure, axes = plt.subplots(len(groups), 2, figsize=(13, 4.2 * len(groups)),
                                squeeze=False)
    for (workload, model), (speed, tta_axis) in zip(groups, axes):
        target = auc_target(ok, workload, model, args.auc_target_drop)
        group = [r for r in ok if r["workload"] == workload and r["model"] == model]
        for mode in dict.fromkeys(r["mode"] for r in group):
            runs = sorted((r for r in group if r["mode"] == mode),
                          key=lambda r: _rate(r["link"]))
            if mode in ONE_PROCESS_MODES:
                speed.axhline(runs[0]["samples_per_s"], linestyle="--", linewidth=1,
                              label=f"{mode} (one process)")
                continue
            x = [min(_rate(r["link"]), top) / 1e9 for r in runs]
            speed.plot(x, [r["samples_per_s"] for r in runs], marker="o", label=mode)
            times = [time_to_auc(r, target) for r in runs]
            tta_axis.plot([a for a, t in zip(x, times) if t is not None],
                          [t for t in times if t is not None], marker="o", label=mode)
        for axis, title in ((speed, "samples/s"), (tta_axis, "time to AUC target (s)")):
            axis.set_xscale("log")
            axis.set_xlabel(f"link rate per host, Gbit/s (unlimited drawn at {top / 1e9:g})")
            axis.set_title(f"{workload} {model}: {title}")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
    figure.suptitle(f"des-tf vs ParameterServerStrategy on {args.links and len(args.links)} "
                    "link rates (2 emulated hosts)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    """`python -m bench.link_report links.json`: rewrites links.md and links.png beside it
    from the JSON (the sweep's flags are read back from its recorded command)."""
    import argparse
    import json
    import shlex
    import time

    from bench import compare

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("links_json", type=Path, help="a sweep's links.json")
    path = parser.parse_args(argv).links_json
    results = json.loads(path.read_text())
    args = compare.parse_args(shlex.split(results["command"])[1:])
    header = results["command"]
    path.with_suffix(".md").write_text(
        f"`{header}` ({results['date'][:10]}, {results['wall_s']} s; report rewritten "
        f"{time.strftime('%Y-%m-%d')})\n\n{markdown(results['runs'], args)}")
    plot(results["runs"], args, path.with_suffix(".png"))


if __name__ == "__main__":
    main()

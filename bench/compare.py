"""Side-by-side comparison: des-tf (DES, alltoall, auto plan) against a real TensorFlow
ParameterServerStrategy and single-process training, on the same data and global batch.

For every model (--models) and workload (--workloads) it runs, one after the other:

- des, alltoall, auto: `horovodrun -np 2 ... python -m des_tf.train --plan=<mode>
  --input_mode=<input mode>`, once per --comm_dtypes (labelled `<mode>/<dtype>` for a
  16-bit one: partials, their gradients and dense gradients sent in that dtype), per
  --transports (labelled `.../horovod` for Horovod's collectives instead of the mesh) and
  per --input_mode (labelled `.../<input mode>` for all but the first);
- ps: bench/ps_baseline.py (2 parameter servers + 2 asynchronous workers, gRPC on
  127.0.0.1), global batch = 2 x --batch_size;
- single: `python -m des_tf.train` in one process with --batch_size = the global batch;
- tf: bench/tf_baseline.py, plain TensorFlow in one process on the global batch (bench/ps's
  models: fixed-size hashed tf.Variable tables, sparse applies to the touched rows, one
  tf.function step): the step des-tf's speed is measured against (`/ tf` column);
- keras: bench/keras_baseline.py, what a Keras user writes first (keras.layers.Embedding
  tables of the same hashed rows, one Adam for every weight, compile / fit).

The synchronous runs (des-tf, single) make one update per global batch where the two
asynchronous PS workers make one each per local batch, so they run at --sync_lr_scale
(default 2) times the PS's learning rates: Horovod's rule of scaling the rate by the
worker count. des-tf and single share the rates, so their equivalence is unaffected.

Workloads are generated once with des_tf.data.synthetic (cached in --data_dir):
`criteo` (26 one-hot categorical fields with Criteo's cardinalities, 13 integer fields,
Zipf ids) and `industrial` (the same plus four multi-hot fields of 200, 100, 50 and 20
ids per sample over vocabularies of 10M, 5M, 2M and 1M, pooled by sqrtn: des_tf.train's
--multi_hot_combiner default).

Figures per run, all over the same window, the training steps after the first
--warmup_steps (tracing, connection set-up):

- comm bytes/step: des-tf's own count (`des_tf.comm`, the summary's per-rank sent +
  received, times the ranks, so on loopback's scale); for the PS run its analytical
  count (unique rows pulled + gradients pushed + dense weights, PS_README_DRAFT.md);
- lo bytes/step: rx + tx of the `lo` interface (/proc/net/dev). Each byte sent over
  loopback is counted twice, once as tx and once as rx, like sent + received summed over
  ranks. This program moves itself into a private network namespace first (it needs
  root), so only the job under test uses that `lo`. For des-tf runs the counter is read
  when rank 0's progress line of step --warmup_steps arrives and again at the line of the
  last step, so start-up, Horovod rendezvous, the data and evaluation traffic are left
  out; `lo_total_bytes` (JSON) has the whole run. des-tf prints a progress line every
  gcd(--warmup_steps, --steps) steps, and only those steps sum the Keras metrics (AUC's
  800 counters) over ranks. The PS launcher runs its cluster in its own namespace and
  brackets the same window itself (`lo_bytes_per_step`);
- samples/s: global samples per second over the same window (des-tf: from the arrival
  times of the same two progress lines); with --repeats=R every mode of a (model,
  workload) runs R times, interleaved, and the report holds each mode's median run,
  with the range of the R (ratios, too, are of medians);
- busy ms/step (JSON): the machine's busy CPU over the same window (/proc/stat), per
  step and per core: the step if no core ever waited (bench/link_report.py's B, the
  run's CPU work in its predicted step time);
- eval AUC and log loss on the held-out 10% of the lines.

With --link=RATE,... every distributed mode runs instead on 2 emulated hosts
(bench/cluster: des-tf by horovodrun over ssh, the PS with a server and a worker per
host; bench/sites.py), once per link rate, bytes counted on each host's eth0 per
direction, and <out_dir>/links.{md,json,png} (bench/link_report.py) hold samples/s,
time-to-AUC (--eval_every) and the predicted step time per rate, beside the PS; the
prediction needs each mode's input pipeline timed alone (bench/input_time.py, once per
model, workload and way of reading, after the first run that needs it).

Prints progress to stderr and a markdown table to stdout, and writes
<out_dir>/compare.{md,json,png}. From the repository root:

    .venv/bin/python bench/compare.py                       # the full comparison
    .venv/bin/python bench/compare.py --models=lr --workloads=criteo \\
        --modes=des,single,ps --steps=10 --rows=5000         # a quick one
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import bench.cluster as cluster  # noqa: E402  (no TensorFlow in these)
from bench import link_report, sites  # noqa: E402
from bench.link_report import ONE_PROCESS_MODES  # noqa: E402
from bench.ps import processes  # noqa: E402
from des_tf.comm.cost import (  # noqa: E402  (nor in it: des_tf loads lazily)
    COMM_DTYPES,
    INPUT_MODES,
)
from des_tf.comm.cost import EXACT_COMM_DTYPE as FLOAT32  # noqa: E402

# des_tf.comm.runtime's TRANSPORT_ENV and transports, the default first (that module
# imports Horovod; tests/test_compare.py checks they agree).
TRANSPORT_ENV, TRANSPORTS = "DES_TF_TRANSPORT", ("mesh", "horovod")


class Run(NamedTuple):
    """One run per model and workload: its label, mode and the des-tf modes' options."""

    label: str
    mode: str
    comm_dtype: str = FLOAT32
    transport: str = TRANSPORTS[0]
    input_mode: str = ""

MODELS = ("deepfm", "lr", "wide_deep")  # run in this order: the targets first
WORKLOADS = {
    "criteo": [],
    "industrial": ["history:200:10000000", "items:100:5000000", "query:50:2000000",
                   "tags:20:1000000"],
}
MODES = ("des", "alltoall", "auto", "ps", "single", "tf", "keras")
# The one-process references: mode -> the script that runs it.
REFERENCES = {"tf": "tf_baseline.py", "keras": "keras_baseline.py"}
DES_MODES = ("des", "alltoall", "auto")
RANKS = 2  # des-tf ranks and PS workers
SUMMARY = {"des_tf": "DES_TF_SUMMARY ", "ps": "PS_BASELINE_SUMMARY ",
           "tf": "TF_BASELINE_SUMMARY ", "keras": "KERAS_BASELINE_SUMMARY "}
STEP_LINE = re.compile(r"step (\d+)/(\d+): ")
INPUT_TIME = "INPUT_TIME_SUMMARY "  # bench/input_time.py's line
# des_tf.cli.held_out's lines (also the PS coordinator's): the seconds and bytes between
# them are evaluation, left out of the training window.
EVAL_BEGINS, EVAL_ENDS = "held-out eval begins at step", "held-out at step"
# The models' flags, as in configs/*_criteo.flags (the PS baseline has the same defaults).
MODEL_FLAGS = ["--embedding_dim=16", "--hidden=400,400,400"]
LEARNING_RATES = {"table": 0.05, "linear": 0.05, "dense": 0.001}  # the PS's; defaults


def say(message: str) -> None:
    print(f"compare: {message}", file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of {MODELS}")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, of {tuple(WORKLOADS)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {MODES}")
    parser.add_argument("--steps", type=int, default=20,
                        help="training steps of every run (global batches)")
    parser.add_argument("--warmup_steps", type=int, default=4,
                        help="first steps left out of bytes/step and samples/s")
    parser.add_argument("--rows", type=int, default=20000,
                        help="generated lines per workload (10%% held out for evaluation; "
                             "training cycles through the rest)")
    parser.add_argument("--batch_size", type=int, default=1024, help="samples per rank")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every system's weight initialisation (--seed of "
                             "des_tf.train and of the baselines)")
    for name, rate in LEARNING_RATES.items():
        parser.add_argument(f"--{name}_learning_rate", type=float, default=rate,
                            help=f"the PS workers' {name} learning rate")
    parser.add_argument("--sync_lr_scale", type=float, default=RANKS,
                        help="learning rates of the synchronous runs (des-tf and single, "
                             "one update per global batch) x this; each of the PS's "
                             f"{RANKS} asynchronous workers updates per local batch at the "
                             "base rates (Horovod's rule: scale by the worker count)")
    parser.add_argument("--comm_dtypes", default=FLOAT32,
                        help=f"comma-separated, of {COMM_DTYPES}: each des-tf mode runs once "
                             "per dtype (DESStrategy comm_dtype)")
    parser.add_argument("--transports", default=TRANSPORTS[0],
                        help=f"comma-separated, of {TRANSPORTS}: each des-tf mode runs once "
                             f"per transport of its collectives ({TRANSPORT_ENV})")
    parser.add_argument("--input_mode", default="replicated_ids",
                        help=f"comma-separated, of {INPUT_MODES}: how ids reach their owners "
                             "in the des-tf runs, each des-tf mode once per input mode "
                             "(docs/design.md section 2). replicated_ids: every rank reads "
                             "the whole global "
                             "batch from its own copy of the data, so no id crosses the "
                             "network (the PS workers, too, read their data locally)")
    parser.add_argument("--ps_table_rows", type=int, default=2**22,
                        help="rows of every PS table (bench/ps_baseline.py --table_rows)")
    parser.add_argument("--out_dir", default=str(REPO_ROOT / "bench" / "results"))
    parser.add_argument("--data_dir", default=str(REPO_ROOT / "build" / "compare_data"))
    parser.add_argument("--timeout_s", type=int, default=900, help="per run")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the modes of every (link, model, workload) this many "
                             "times, interleaved (every mode once, then again), and report "
                             "each mode's median samples/s with the range: on a shared "
                             "machine one run's speed can swing by a third")
    parser.add_argument("--netns", choices=("auto", "on", "off"), default="auto",
                        help="enter a private network namespace (root): on = required")
    parser.add_argument("--link", default="",
                        help="comma-separated link rates per host (tc rates such as 1gbit, "
                             "250mbit, or unlimited): run every distributed mode on "
                             f"{RANKS} emulated hosts (bench/cluster, root) once per rate and "
                             "write links.{md,json,png}; empty: everything on loopback")
    parser.add_argument("--eval_every", type=int, default=0,
                        help="held-out AUC every this many steps (des-tf, single, ps): the "
                             "time-to-accuracy curve")
    parser.add_argument("--eval_batches", type=int, default=8,
                        help="global batches of the held-out slice --eval_every evaluates")
    parser.add_argument("--auc_target_drop", type=float, default=0.005,
                        help="time-to-AUC target: the single run's last held-out AUC minus "
                             "this")
    args = parser.parse_args(argv)

    def chosen(name: str, allowed: tuple[str, ...]) -> list[str]:
        """The comma-separated values of flag `name`, each one of `allowed`."""
        values = [v for v in getattr(args, name).split(",") if v]
        unknown = sorted(set(values) - set(allowed))
        if unknown or not values:
            parser.error(f"--{name}={getattr(args, name)}: unknown {unknown}; choose from "
                         f"{allowed}")
        return values

    for name, allowed in (("models", MODELS), ("workloads", tuple(WORKLOADS)),
                          ("modes", MODES)):
        setattr(args, name, chosen(name, allowed))
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if not 0 < args.warmup_steps < args.steps:
        parser.error(f"need 0 < --warmup_steps ({args.warmup_steps}) < --steps ({args.steps})")
    args.links = [None if v == "unlimited" else v for v in args.link.split(",") if v]
    for link in args.links:
        if link is not None:
            try:
                cluster.network.rate_bits(link)
            except ValueError as error:
                parser.error(f"--link: {error}")
    dtypes = chosen("comm_dtypes", COMM_DTYPES)
    transports = chosen("transports", TRANSPORTS)
    input_modes = chosen("input_mode", INPUT_MODES)
    args.runs = []  # every Run per model and workload, in order
    for mode in args.modes:
        if mode not in DES_MODES:
            args.runs.append(Run(mode, mode))
            continue
        for dtype in dtypes:
            for transport in transports:
                for input_mode in input_modes:
                    label = "/".join([mode] + [dtype] * (dtype != FLOAT32)
                                     + [transport] * (transport != TRANSPORTS[0])
                                     + [input_mode] * (input_mode != input_modes[0]))
                    args.runs.append(Run(label, mode, dtype, transport, input_mode))
    return args


def child_env(ranks: int = 1) -> dict:
    """The environment of every job: this checkout first on PYTHONPATH."""
    path = [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if ranks > 1:  # ranks share the machine's cores, as in tests/horovod_harness.py
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2")
    return env


def data_flags(args, workload: str) -> list[str]:
    multi_hot = WORKLOADS[workload]
    return [f"--synthetic_rows={args.rows}", f"--data_dir={args.data_dir}",
            *([f"--synthetic_multi_hot={','.join(multi_hot)}"] if multi_hot else [])]


def generate_data(args, workload: str) -> dict:
    """Generates (or finds cached) the workload's lines once, before any timed run."""
    fields = ", ".join(f"MultiHotSpec({n!r}, {float(m)}, {int(v)})" for n, m, v in
                       (entry.split(":") for entry in WORKLOADS[workload]))
    code = ("import json\nfrom des_tf.data.synthetic import SyntheticSpec, MultiHotSpec, cached\n"
            f"spec = SyntheticSpec(rows={args.rows}, multi_hot=({fields}{',' if fields else ''}))\n"
            f"print('FACTS ' + json.dumps(cached({args.data_dir!r}, spec, "
            "progress=lambda m: None)))")
    return summary_of([sys.executable, "-c", code], "FACTS ", f"generating {workload} data")


def summary_of(command: list[str], prefix: str, what: str, timeout_s: float | None = None
               ) -> dict:
    """Runs a helper `command` to its end; the JSON its first line starting with `prefix`
    holds, or a RuntimeError saying `what` failed, with the output's tail."""
    done = subprocess.run(command, env=child_env(), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout_s)
    found = [line for line in done.stdout.splitlines() if line.startswith(prefix)]
    if done.returncode or not found:
        raise RuntimeError(f"{what} failed:\n{done.stdout[-3000:]}")
    return json.loads(found[0][len(prefix):])


def learning_rates(args) -> dict[str, float]:
    return {name: getattr(args, f"{name}_learning_rate") for name in LEARNING_RATES}


def learning_rate_flags(args, scale: float) -> list[str]:
    return [f"--{name}_learning_rate={rate * scale:g}"
            for name, rate in learning_rates(args).items()]


def eval_flags(args) -> list[str]:
    """The held-out curve's flags (des_tf.cli.data_flags), when --eval_every asks."""
    if not args.eval_every:
        return []
    return [f"--eval_every={args.eval_every}", f"--eval_batches={args.eval_batches}"]


def des_command(args, site, model: str, workload: str, run: Run) -> list[str]:
    train = [sys.executable, "-m", "des_tf.train", f"--model={model}", *MODEL_FLAGS,
             *learning_rate_flags(args, args.sync_lr_scale),
             *data_flags(args, workload), *eval_flags(args), f"--steps={args.steps}",
             f"--seed={args.seed}",
             # Progress lines (each sums the metrics over ranks) at both window ends.
             f"--log_every={math.gcd(args.warmup_steps, args.steps)}"]
    if model == "lr":
        train.append("--integer_mode=bucketize")  # configs/lr_criteo.flags
    if run.mode == "single":
        return [*train, f"--batch_size={RANKS * args.batch_size}"]
    return site.on_launch_host([
        *site.horovodrun(RANKS), *train, f"--batch_size={args.batch_size}",
        f"--plan={run.mode}", f"--input_mode={run.input_mode}",
        f"--comm_dtype={run.comm_dtype}"])


def ps_command(args, site, model: str, workload: str, metrics: Path) -> list[str]:
    flags = [f for f in MODEL_FLAGS if model != "lr"] + learning_rate_flags(args, 1.0)
    command = [sys.executable, str(REPO_ROOT / "bench" / "ps_baseline.py"), f"--model={model}",
               *flags, *data_flags(args, workload), f"--batch_size={args.batch_size}",
               f"--num_workers={RANKS}", "--num_ps=2", f"--steps={args.steps}",
               f"--warmup_steps={args.warmup_steps}", f"--table_rows={args.ps_table_rows}",
               f"--log_every={max(1, args.steps // 5)}", f"--metrics_json={metrics}",
               f"--timeout_s={args.timeout_s}", f"--seed={args.seed}", *eval_flags(args),
               *site.ps_flags()]
    if model == "lr":
        command.append("--integer_mode=bucketize")
    return site.on_launch_host(command)


def reference_command(args, model: str, workload: str, mode: str) -> list[str]:
    """A one-process reference (REFERENCES) on the global batch, at des-tf's rates."""
    flags = [f for f in MODEL_FLAGS if model != "lr"] + learning_rate_flags(args,
                                                                          args.sync_lr_scale)
    command = [sys.executable, str(REPO_ROOT / "bench" / REFERENCES[mode]), f"--model={model}",
               *flags, *data_flags(args, workload), f"--batch_size={RANKS * args.batch_size}",
               f"--steps={args.steps}", f"--warmup_steps={args.warmup_steps}",
               f"--table_rows={args.ps_table_rows}", f"--seed={args.seed}",
               f"--log_every={math.gcd(args.warmup_steps, args.steps)}"]
    if model == "lr":
        command.append("--integer_mode=bucketize")
    return command


def input_ms_per_step(args, model: str, workload: str, keep_ids_global: bool) -> float:
    """One rank's input pipeline alone on one core, ms per step (bench/input_time.py):
    the part of a step's CPU that runs ahead of the step, which link_report's predicted
    step time lets overlap the link's transfers."""
    command = [sys.executable, str(REPO_ROOT / "bench" / "input_time.py"),
               *data_flags(args, workload), f"--batch_size={args.batch_size}",
               f"--ranks={RANKS}", f"--keep_ids_global={keep_ids_global}",
               "--steps=60", "--warmup_steps=10"]
    if model == "lr":
        command.append("--integer_mode=bucketize")
    return summary_of(command, INPUT_TIME, "timing the input pipeline",
                      args.timeout_s)["input_ms_per_step"]


def add_input_time(args, row: dict, model: str, workload: str, run: Run,
                   timed: dict[tuple, float]) -> None:
    """On a --link sweep, a distributed run's row gets its input pipeline's time (timed
    once per model, workload and way of reading: `timed` keeps them)."""
    if not args.links or row["status"] != "ok" or run.mode in ONE_PROCESS_MODES:
        return
    key = (model, workload, run.mode != "ps" and run.input_mode == "replicated_ids")
    if key not in timed:
        timed[key] = input_ms_per_step(args, *key)
    row["input_ms_per_step"] = timed[key]


def run_job(command: list[str], args, log_path: Path, window: bool, env: dict,
            counters) -> dict:
    """Runs `command`, teeing its output to `log_path`. With `window`, reads the byte
    `counters()` (a (received, transmitted) pair per host), the machine's busy CPU and the
    time when the progress lines of steps --warmup_steps and --steps arrive, leaving out
    the seconds, bytes and CPU of held-out evaluations in between. Returns the summary
    JSON (or raises) with the window's figures added."""
    started, total_start = time.monotonic(), counters()
    marks: dict[int, tuple[float, list, float]] = {}
    evaluating: tuple[float, list, float] | None = None
    excluded_s, excluded, excluded_cpu_s = 0.0, [(0, 0) for _ in total_start], 0.0
    lines: list[str] = []
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            deadline = started + args.timeout_s
            for line in process.stdout:
                now = time.monotonic()
                log.write(line)
                lines.append(line)
                match = STEP_LINE.search(line)
                in_window = args.warmup_steps in marks and args.steps not in marks
                if window and match and int(match.group(1)) in (args.warmup_steps, args.steps):
                    marks[int(match.group(1))] = (now, counters(), busy_cpu_s())
                elif window and in_window and EVAL_BEGINS in line:
                    evaluating = (now, counters(), busy_cpu_s())
                elif window and evaluating and EVAL_ENDS in line:
                    excluded_s += now - evaluating[0]
                    excluded = _plus(excluded, _minus(counters(), evaluating[1]))
                    excluded_cpu_s += busy_cpu_s() - evaluating[2]
                    evaluating = None
                if now > deadline:
                    raise TimeoutError(f"ran past --timeout_s={args.timeout_s}")
            code = process.wait(timeout=max(1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired) as error:
            os.killpg(process.pid, 9)  # its own session: horovodrun and its ranks
            process.wait()
            raise RuntimeError(f"{error}; output in {log_path}") from None
    total = _minus(counters(), total_start)
    prefix = next((p for p in SUMMARY.values() if any(p in line for line in lines)), None)
    if code or prefix is None:
        tail = "".join(lines[-15:])
        raise RuntimeError(f"exit code {code}; output in {log_path}; last lines:\n{tail}")
    summary_line = [line for line in lines if prefix in line][-1]
    summary = json.loads(summary_line.split(prefix, 1)[1])
    summary["run_wall_s"] = round(time.monotonic() - started, 1)
    summary["lo_total_bytes"] = sum(map(sum, total))
    if window:
        if set(marks) != {args.warmup_steps, args.steps}:
            raise RuntimeError(f"progress lines of steps {args.warmup_steps} and {args.steps} "
                               f"not seen (got {sorted(marks)}); output in {log_path}")
        (t0, c0, cpu0), (t1, c1, cpu1) = marks[args.warmup_steps], marks[args.steps]
        steps = args.steps - args.warmup_steps
        moved = _minus(_minus(c1, c0), excluded)  # per host: (received, transmitted)
        summary["window_lo_bytes_per_step"] = round(sum(map(sum, moved)) / steps)
        summary["window_max_direction_bytes_per_step"] = round(max(map(max, moved)) / steps)
        summary["window_samples_per_s"] = round(
            steps * summary["global_batch"] / (t1 - t0 - excluded_s), 1)
        summary["window_busy_ms_per_step"] = round(
            1000 * (cpu1 - cpu0 - excluded_cpu_s) / os.cpu_count() / steps, 2)
    return summary


def busy_cpu_s() -> float:
    """Seconds this machine's cores have spent busy so far, summed over cores and
    processes (/proc/stat's user, nice, system, irq and softirq, read by psutil; idle,
    iowait and the hypervisor's steal left out)."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


def _minus(a: list, b: list) -> list:
    return [(x[0] - y[0], x[1] - y[1]) for x, y in zip(a, b)]


def _plus(a: list, b: list) -> list:
    return [(x[0] + y[0], x[1] + y[1]) for x, y in zip(a, b)]


def record(args, model: str, workload: str, mode: str, summary: dict, site) -> dict:
    """One row of the results from a run's summary."""
    row = {"workload": workload, "model": model, "mode": mode, "status": "ok",
           "link": site.label, "global_batch": summary["global_batch"], "steps": args.steps,
           "measured_steps": args.steps - args.warmup_steps,
           "eval_auc": summary["eval_auc"], "eval_logloss": summary["eval_logloss"],
           "data_ceiling_auc": summary.get("data_ceiling_auc"),
           "held_out_curve": summary.get("held_out_curve"),
           "run_wall_s": summary["run_wall_s"], "lo_total_bytes": summary["lo_total_bytes"]}
    if mode == "ps":
        row.update(comm_bytes_per_step=summary["analytical_bytes_per_step"],
                   comm_bytes_source="PS analytical",
                   comm_bytes_by_kind={k: 2 * v for k, v in
                                       summary["analytical_payload_per_step"].items()},
                   unique_rows_per_worker_step=summary["unique_rows_per_worker_step"])
        if isinstance(site, sites.Loopback):  # its launcher brackets its own namespace's lo
            row.update(lo_bytes_per_step=summary["lo_bytes_per_step"],
                       lo_private_netns=summary["lo_private_netns"],
                       samples_per_s=summary["samples_per_s"])
            return row
    else:
        ranks = summary["ranks"]
        per_rank = summary["bytes_per_step"]
        row.update(comm_bytes_per_step=ranks * (per_rank["sent"] + per_rank["received"]),
                   comm_bytes_source="des_tf.comm",
                   # Every byte one rank sends another receives: sent x 2 on lo's scale.
                   comm_bytes_by_kind={k: 2 * ranks * v
                                       for k, v in per_rank["sent_by_kind"].items()},
                   summary_samples_per_s=summary["samples_per_s"])
    if isinstance(site, sites.Hosts):  # every host's eth0, rx + tx
        row.update(eth0_bytes_per_step=summary["window_lo_bytes_per_step"],
                   max_direction_bytes_per_step=summary["window_max_direction_bytes_per_step"])
    else:
        row.update(lo_bytes_per_step=summary["window_lo_bytes_per_step"],
                   lo_private_netns=args.private_netns)
    row["samples_per_s"] = summary["window_samples_per_s"]
    # Busy CPU of all cores per step / the cores: the step if no core ever waited.
    row["busy_ms_per_step"] = summary["window_busy_ms_per_step"]
    return row


def run_one(args, site, model: str, workload: str, run: Run, logs: Path,
            repeat: int = 0) -> dict:
    """Runs one (model, workload, run) on `site`; its row, or a failed row."""
    label, mode = run.label, run.mode
    name = (f"{workload}-{model}-{label.replace('/', '-')}-{site.label}"
            + (f"-{repeat + 1}" if args.repeats > 1 else ""))
    started = time.monotonic()
    try:
        if mode == "ps":
            command = ps_command(args, site, model, workload, logs / f"{name}.json")
        elif mode in REFERENCES:
            command = reference_command(args, model, workload, mode)
        else:
            command = des_command(args, site, model, workload, run)
        env = child_env(RANKS if mode in DES_MODES else 1)
        env[TRANSPORT_ENV] = run.transport
        # The loopback PS brackets its own namespace's lo; elsewhere this process does.
        window = not (mode == "ps" and isinstance(site, sites.Loopback))
        summary = run_job(command, args, logs / f"{name}.log", window=window, env=env,
                          counters=site.counters)
        row = record(args, model, workload, label, summary, site)
        row.update(comm_dtype=run.comm_dtype, transport=run.transport,
                   input_mode=run.input_mode, command=" ".join(command))
        say(f"  done in {time.monotonic() - started:.0f} s: "
            f"net {row.get('lo_bytes_per_step', row.get('eth0_bytes_per_step')):,} B/step, comm "
            f"{row['comm_bytes_per_step']:,} B/step, {row['samples_per_s']:,.0f} "
            f"samples/s, AUC {row['eval_auc']:.4f}")
        return row
    except Exception as error:  # one failed run must not lose the others
        say(f"  FAILED after {time.monotonic() - started:.0f} s: {error}")
        return {"workload": workload, "model": model, "mode": label, "link": site.label,
                "status": "failed", "note": str(error).splitlines()[0]}


def run_all(args, write, site) -> list[dict]:
    """Runs every (link, model, workload, mode) in that order (one-process modes once, at
    the first link: they move no byte), the modes --repeats times each; calls
    `write(rows)` after each run, so an interrupted comparison keeps what it measured."""
    out_dir = Path(args.out_dir)
    logs = out_dir / "compare_logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for workload in args.workloads:
        say(f"data for {workload}: generating {args.rows:,} lines (or using the cache) ...")
        facts = generate_data(args, workload)
        say(f"  {facts['path']} (hidden model AUC {facts['ceiling_auc']:.4f})")
    links = args.links or [None]
    input_ms: dict[tuple, float] = {}
    for index, link in enumerate(links):
        if args.links:
            site.set_link(link)
        runs = [run for run in args.runs if index == 0 or run.mode not in ONE_PROCESS_MODES]
        for model in args.models:
            for workload in args.workloads:
                for repeat in range(args.repeats):
                    for run in runs:
                        say(f"[{len(rows) + 1}/{planned_runs(args)}] {workload} {model} "
                            f"{run.label} ({site.label}) ...")
                        row = run_one(args, site, model, workload, run, logs, repeat)
                        add_input_time(args, row, model, workload, run, input_ms)
                        rows.append(row)
                        write(rows)
    return rows


def combine_repeats(rows: list[dict]) -> list[dict]:
    """One row per (workload, model, mode, link), in first-run order: of its successful
    repeats the one with the median samples/s (the lower middle one of an even count),
    with every repeat's samples/s in `samples_per_s_repeats`; a key none of whose repeats
    succeeded keeps its first failed row."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["workload"], row["model"], row["mode"], row["link"]),
                          []).append(row)
    combined = []
    for group in groups.values():
        ok = sorted((r for r in group if r["status"] == "ok"),
                    key=lambda r: r["samples_per_s"])
        if not ok:
            combined.append(group[0])
            continue
        median = dict(ok[(len(ok) - 1) // 2])
        median["samples_per_s_repeats"] = [r["samples_per_s"] for r in ok]
        median["failed_repeats"] = len(group) - len(ok)
        combined.append(median)
    return combined


def planned_runs(args) -> int:
    one_process = sum(run.mode in ONE_PROCESS_MODES for run in args.runs)
    per_link = len(args.runs) - one_process
    return args.repeats * len(args.models) * len(args.workloads) * (
        one_process + per_link * max(1, len(args.links)))


def _ratio(value, base) -> str:
    if value is None or not base:
        return ""
    return f"{value / base:.2f}"


def markdown(rows: list[dict], args) -> str:
    header = ("| workload | model | mode | comm bytes/step | comm / PS comm | lo bytes/step | "
              "lo / PS lo | samples/s | / PS samples/s | / tf samples/s | / single samples/s | "
              "eval AUC | AUC - PS | AUC - single | AUC - float32 | eval logloss |")
    lines = [header, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
                     "---: | ---: | ---: | ---: | ---: | ---: |"]
    by_key = {(r["workload"], r["model"], r["mode"]): r for r in rows if r["status"] == "ok"}
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['workload']} | {row['model']} | {row['mode']} | "
                         f"{row['status']}: {row['note'][:120]} | | | | | | | | | | | | |")
            continue
        ps = by_key.get((row["workload"], row["model"], "ps"))
        single = by_key.get((row["workload"], row["model"], "single"))
        plain_tf = by_key.get((row["workload"], row["model"], "tf"))
        comm = f"{row['comm_bytes_per_step']:,}" + (" (analytical)" if row["mode"] == "ps"
                                                     else "")
        auc_ps = f"{row['eval_auc'] - ps['eval_auc']:+.4f}" if ps else ""
        auc_single = f"{row['eval_auc'] - single['eval_auc']:+.4f}" if single else ""
        exact = by_key.get((row["workload"], row["model"], row["mode"].split("/")[0]))
        auc_exact = (f"{row['eval_auc'] - exact['eval_auc']:+.4f}"
                     if exact and exact is not row else "")
        lines.append(
            f"| {row['workload']} | {row['model']} | {row['mode']} | {comm} | "
            f"{_ratio(row['comm_bytes_per_step'], ps and ps['comm_bytes_per_step'])} | "
            f"{row['lo_bytes_per_step']:,} | "
            f"{_ratio(row['lo_bytes_per_step'], ps and ps['lo_bytes_per_step'])} | "
            f"{_speed(row)} | "
            f"{_ratio(row['samples_per_s'], ps and ps['samples_per_s'])} | "
            f"{_ratio(row['samples_per_s'], plain_tf and plain_tf['samples_per_s'])} | "
            f"{_ratio(row['samples_per_s'], single and single['samples_per_s'])} | "
            f"{row['eval_auc']:.4f} | {auc_ps} | {auc_single} | {auc_exact} | "
            f"{row['eval_logloss']:.4f} |")
    notes = (f"\nBytes are per training step (global batch {RANKS} x {args.batch_size}), "
             f"rx + tx on loopback's scale (every byte counted once sent, once received), "
             f"over steps {args.warmup_steps + 1}-{args.steps} of {args.steps}; des-tf "
             f"input mode {args.input_mode.replace(',', ', ')}; des-tf and single update "
             f"once per global "
             f"batch at {args.sync_lr_scale:g}x the learning rates each asynchronous PS "
             f"worker uses per local batch ({learning_rates(args)}). comm = "
             f"des_tf.comm's count (PS: analytical); lo = the `lo` counter in a private "
             f"network namespace (for des-tf it also carries Horovod's coordination "
             f"messages, one round per HOROVOD_CYCLE_TIME, which des_tf.comm does not "
             f"count). samples/s over the same steps"
             + (f", the median of {args.repeats} interleaved repeats (their range in "
                f"brackets; bytes and AUC from the median run)" if args.repeats > 1 else "")
             + f"; AUC on the held-out 10% of {args.rows:,} generated lines.\n")
    return "\n".join(lines) + "\n" + notes


def _speed(row: dict) -> str:
    """Samples/s, with the range and failures of its repeats where there were several."""
    repeats = row.get("samples_per_s_repeats", [])
    text = f"{row['samples_per_s']:,.0f}"
    if len(repeats) + row.get("failed_repeats", 0) < 2:
        return text
    failed = f"; {row['failed_repeats']} failed" if row.get("failed_repeats") else ""
    return f"{text} ({min(repeats):,.0f}-{max(repeats):,.0f}{failed})"


def kind_breakdown(rows: list[dict]) -> str:
    """Which part of the bytes dominates, per run."""
    lines = ["| workload | model | mode | comm bytes/step by kind |", "| --- | --- | --- | --- |"]
    for row in rows:
        if row["status"] == "ok" and row.get("comm_bytes_by_kind"):
            kinds = sorted(row["comm_bytes_by_kind"].items(), key=lambda kv: -kv[1])
            text = ", ".join(f"{k} {v:,}" for k, v in kinds)
            lines.append(f"| {row['workload']} | {row['model']} | {row['mode']} | {text} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [r for r in rows if r["status"] == "ok"]
    groups = sorted({(r["workload"], r["model"]) for r in ok},
                    key=lambda g: (list(WORKLOADS).index(g[0]), MODELS.index(g[1])))
    modes = list(dict.fromkeys(r["mode"] for r in ok))
    if not groups:
        return
    index = {(r["workload"], r["model"], r["mode"]): r for r in ok}
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    width = 0.8 / max(1, len(modes))
    x = np.arange(len(groups))
    panels = (("lo_bytes_per_step", "lo bytes per step (rx + tx, log)", True),
              ("samples_per_s", "samples/s", False), ("eval_auc", "eval AUC", False))
    for axis, (key, title, log) in zip(axes, panels):
        # a log scale needs one positive value (one-process modes move no byte)
        log = log and any(r[key] and r[key] > 0 for r in ok)
        for m, mode in enumerate(modes):
            values = [index[(w, mo, mode)][key] if (w, mo, mode) in index else np.nan
                      for w, mo in groups]
            if log:
                values = [v if v and v > 0 else np.nan for v in values]
            axis.bar(x + (m - (len(modes) - 1) / 2) * width, values, width, label=mode)
        if key == "lo_bytes_per_step":
            # des_tf.comm's / the PS analytical count, as markers on the same scale
            for m, mode in enumerate(modes):
                values = [index[(w, mo, mode)]["comm_bytes_per_step"]
                          if (w, mo, mode) in index else np.nan for w, mo in groups]
                values = [v if v and v > 0 else np.nan for v in values]
                axis.scatter(x + (m - (len(modes) - 1) / 2) * width, values, marker="_",
                             color="black", s=120, zorder=3,
                             label="comm count" if m == 0 else None)
            if log:
                axis.set_yscale("log")
        if key == "eval_auc":
            aucs = [r["eval_auc"] for r in ok]
            axis.set_ylim(max(0.0, min(aucs) - 0.02), min(1.0, max(aucs) + 0.02))
        axis.set_xticks(x, [f"{w}\n{mo}" for w, mo in groups], fontsize=8)
        axis.set_title(title)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"des-tf vs ParameterServerStrategy vs one process ({RANKS} ranks / "
                    f"workers, same data and global batch)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv=None) -> None:
    args = parse_args(argv)
    args.private_netns = False
    if args.netns != "off" and not args.links:
        try:
            processes.enter_private_network()
            args.private_netns = True
        except OSError as error:
            if args.netns == "on":
                raise SystemExit(f"--netns=on: no private network namespace ({error})")
            say(f"no private network namespace ({error}): the `lo` counter is the machine's")
    if args.links:
        reason = cluster.unavailable_reason()
        if reason:
            raise SystemExit(f"--link: {reason}")
        with cluster.running(hosts=RANKS) as made:
            compare(args, argv, sites.Hosts(made))
    else:
        compare(args, argv, sites.Loopback())


def compare(args, argv, site) -> None:
    """Runs the comparison on `site` and writes its report: compare.{md,json,png} on
    loopback, links.{md,json,png} for a --link sweep."""
    started = time.monotonic()
    out_dir = Path(args.out_dir)
    command = ("bench/compare.py " + " ".join(sys.argv[1:] if argv is None else argv)).strip()
    planned = planned_runs(args)
    name = "links" if args.links else "compare"

    def report(rows: list[dict]) -> str:
        if args.links:
            return link_report.markdown(rows, args)
        return f"{markdown(rows, args)}\n{kind_breakdown(rows)}"

    def write(all_runs: list[dict]) -> None:
        rows = combine_repeats(all_runs)
        done = "" if len(all_runs) == planned else f", {len(all_runs)} of {planned} runs so far"
        (out_dir / f"{name}.md").write_text(
            f"`{command}` ({time.strftime('%Y-%m-%d')}, {time.monotonic() - started:.0f} s"
            f"{done})\n\n{report(rows)}")
        (out_dir / f"{name}.json").write_text(json.dumps(
            {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
             "ranks": RANKS, "batch_size_per_rank": args.batch_size, "steps": args.steps,
             "input_mode": args.input_mode, "learning_rates": learning_rates(args),
             "sync_lr_scale": args.sync_lr_scale, "links": args.link,
             "warmup_steps": args.warmup_steps, "rows": args.rows,
             "private_netns": args.private_netns, "complete": len(all_runs) == planned,
             "wall_s": round(time.monotonic() - started), "repeats": args.repeats,
             "runs": rows, **({"repeat_runs": all_runs} if args.repeats > 1 else {})},
            indent=1) + "\n")
        if args.links:
            link_report.plot(rows, args, out_dir / f"{name}.png")
        else:
            plot(rows, out_dir / f"{name}.png")

    rows = combine_repeats(run_all(args, write, site))
    print(report(rows))
    say(f"wrote {out_dir}/{name}.md, {name}.json, {name}.png in "
        f"{time.monotonic() - started:.0f} s")
    if not any(r["status"] == "ok" for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()

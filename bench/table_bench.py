"""Embedding-table micro-benchmark: des-tf DynamicTable against TensorFlow's own tables.

Measures, side by side, the throughput (keys/s) of four operations:

- fill: lookup-with-insert of all `num_keys` distinct keys into an empty table, in
  batches of `--batch_size` brand-new keys;
- lookup-with-insert: on the filled table, batches of Zipf(`--zipf_a`) keys of which a
  fraction `--new_key_fraction` are brand-new keys that get inserted;
- find: lookup without insert of Zipf batches (every key present);
- apply (Adagrad): sparse Adagrad on Zipf batches with random normal gradients, the
  gradients of duplicate keys summed;

for tables of `--sizes` distinct keys and row widths `--dims`, against these backends:

- des: `des_tf.tables.DynamicTable` with `des_tf.optimizers.Adagrad` (optimizer inside);
- dense: `tf.lookup.experimental.DenseHashTable`, plus a second one for the accumulators;
- mutable: `tf.lookup.experimental.MutableHashTable`, likewise;
- variable: a fixed vocabulary `tf.Variable[num_keys, dim]` read with `tf.gather` and
  updated with `ResourceSparseApplyAdagradV2` (the ceiling; it cannot insert, so its
  "lookup-with-insert" is a gather and it has no fill).

Every timed operation is a `tf.function`; each is warmed up once, then timed over at
least `--min_batches` batches and `--min_seconds` seconds of op time. Keys are int64
spread over the whole 64-bit range: a Zipf rank is folded into [0, num_keys), mapped
through a fixed random permutation to a row index, and the index i becomes the key
(i + 1) * KEY_MULTIPLIER mod 2^64, so hot keys are neither small nor adjacent.

Memory: des reports `memory_bytes() / size()` after the fill; every backend also gets
an estimate from the process RSS growth over the fill (after `malloc_trim`). Both are
compared with the raw payload that backend holds after the fill.

Prints progress to stderr, a markdown report to stdout, and writes
`<out_dir>/table_bench.json` and `<out_dir>/table_bench.png`. Run from the repository
root:

    .venv/bin/python bench/table_bench.py

(`--help` lists the flags, e.g. `--sizes 100000 --dims 16` for a quick run, or
`--skip mutable:10000000:64` to leave a case out.)
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import ctypes  # noqa: E402
import dataclasses  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import tensorflow as tf  # noqa: E402

import des_tf as des  # noqa: E402

BACKENDS = ("des", "dense", "mutable", "variable")
OPERATIONS = ("fill", "lookup_insert", "find", "apply")
OPERATION_TITLES = {"fill": "fill (all keys new)", "lookup_insert": "lookup-with-insert",
                    "find": "find", "apply": "apply_gradients (Adagrad)"}

# Adagrad, as des_tf.optimizers.Adagrad's defaults, for every backend.
LEARNING_RATE = 0.05
INITIAL_ACCUMULATOR = 0.1
EPSILON = 1e-7
INIT_SCALE = 0.05  # new rows are uniform in [-INIT_SCALE, INIT_SCALE)

KEY_MULTIPLIER = 0x9E3779B97F4A7C15  # odd, so index -> key is a bijection mod 2^64
EMPTY_KEY = 0     # DenseHashTable sentinels: (i + 1) * KEY_MULTIPLIER == 0 needs i + 1 == 2^64,
DELETED_KEY = -1  # and == -1 needs the index DELETED_KEY_INDEX below
DELETED_KEY_INDEX = (-pow(KEY_MULTIPLIER, -1, 2**64)) % 2**64 - 1

KEYS_SPEC = tf.TensorSpec([None], tf.int64)
POOL_BATCHES = 8  # distinct Zipf batches, cycled through by the timed loops
SEED = 20240611


# ---------------------------------------------------------------------------- keys


@dataclasses.dataclass(frozen=True)
class KeySpace:
    """The `num_keys` keys of one table size and how Zipf ranks map onto them."""

    num_keys: int
    permutation: np.ndarray  # Zipf rank -> row index

    @staticmethod
    def create(num_keys: int, rng: np.random.Generator) -> "KeySpace":
        return KeySpace(num_keys, rng.permutation(num_keys).astype(np.int64))

    def zipf_indices(self, rng: np.random.Generator, count: int, zipf_a: float) -> np.ndarray:
        ranks = (rng.zipf(zipf_a, count) - 1) % self.num_keys
        return self.permutation[ranks]


def keys_of(indices: np.ndarray) -> np.ndarray:
    """Row index i -> key (i + 1) * KEY_MULTIPLIER mod 2^64, as int64."""
    wrapped = (indices.astype(np.uint64) + np.uint64(1)) * np.uint64(KEY_MULTIPLIER)
    return wrapped.view(np.int64)


@dataclasses.dataclass(frozen=True)
class Workload:
    """The batches every backend of one (num_keys, dim) case sees."""

    key_space: KeySpace
    dim: int
    batch_size: int
    new_per_batch: int
    pool: list[np.ndarray]     # Zipf row indices, all in [0, num_keys)
    gradients: list[tf.Tensor]

    @staticmethod
    def create(key_space: KeySpace, dim: int, args: argparse.Namespace) -> "Workload":
        rng = np.random.default_rng([SEED, key_space.num_keys, dim])
        pool = [key_space.zipf_indices(rng, args.batch_size, args.zipf_a)
                for _ in range(POOL_BATCHES)]
        gradients = [tf.constant(rng.standard_normal((args.batch_size, dim), np.float32))
                     for _ in range(POOL_BATCHES)]
        new_per_batch = round(args.batch_size * args.new_key_fraction)
        return Workload(key_space, dim, args.batch_size, new_per_batch, pool, gradients)

    def fill_indices(self, batch: int) -> np.ndarray:
        start = batch * self.batch_size
        return np.arange(start, min(start + self.batch_size, self.key_space.num_keys))

    def num_fill_batches(self) -> int:
        return -(-self.key_space.num_keys // self.batch_size)

    def indices_with_new_keys(self, batch: int) -> np.ndarray:
        """Pool batch `batch` with its first `new_per_batch` entries replaced by indices
        >= num_keys that no earlier batch used."""
        indices = self.pool[batch % POOL_BATCHES].copy()
        first_new = self.key_space.num_keys + batch * self.new_per_batch
        indices[:self.new_per_batch] = np.arange(first_new, first_new + self.new_per_batch)
        return indices


# ---------------------------------------------------------------------------- backends


class Backend:
    """One table implementation: tf.functions for each operation, on keys or indices."""

    name: str
    inserts: bool = True        # False: fixed vocabulary, no fill and no new keys
    payload_floats_per_dim = 1  # floats per row per dim unit held after the fill
    payload_key_bytes = 8

    def inputs(self, indices: np.ndarray) -> tf.Tensor:
        """What the operations take for these row indices: the keys, by default."""
        return tf.constant(keys_of(indices))

    def payload_bytes_per_row(self, dim: int) -> int:
        return self.payload_key_bytes + 4 * dim * self.payload_floats_per_dim

    def api_bytes_per_row(self) -> Optional[float]:
        """Bytes per row from the table's own accounting, where it has one."""
        return None


class DesBackend(Backend):
    name = "des"
    payload_floats_per_dim = 2  # values + Adagrad accumulator

    def __init__(self, dim: int):
        self.table = des.tables.DynamicTable(
            dim, optimizer=des.optimizers.Adagrad(LEARNING_RATE,
                                                  initial_accumulator=INITIAL_ACCUMULATOR,
                                                  epsilon=EPSILON),
            initializer="uniform", initializer_scale=INIT_SCALE, capacity_hint=0)
        step = tf.constant(1, tf.int64)
        self.lookup_insert = tf.function(self.table.lookup, input_signature=[KEYS_SPEC])
        self.find = tf.function(lambda keys: self.table.find(keys), input_signature=[KEYS_SPEC])
        self.apply = tf.function(
            lambda keys, grads: self.table.apply_gradients(keys, grads, step) and None,
            input_signature=[KEYS_SPEC, tf.TensorSpec([None, dim], tf.float32)])

    def api_bytes_per_row(self) -> float:
        return int(self.table.memory_bytes()) / int(self.table.size())


def _uniform_rows(count: tf.Tensor, dim: int) -> tf.Tensor:
    return tf.random.uniform(tf.stack([count, dim]), -INIT_SCALE, INIT_SCALE)


def _sum_duplicates(ids: tf.Tensor, grads: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(distinct ids, their summed gradient rows)."""
    unique_ids, position = tf.unique(ids)
    return unique_ids, tf.math.unsorted_segment_sum(grads, position, tf.size(unique_ids))


class TfHashBackend(Backend):
    """A TF hash table of values plus one of Adagrad accumulators (filled lazily: an
    absent key's accumulator is the default, INITIAL_ACCUMULATOR). Absent values read as
    NaN, which marks the keys lookup-with-insert must insert."""

    def __init__(self, dim: int):
        self.values = self.make_table(tf.fill([dim], np.float32("nan")))
        self.accumulators = self.make_table(tf.fill([dim], np.float32(INITIAL_ACCUMULATOR)))
        grads_spec = tf.TensorSpec([None, dim], tf.float32)
        self.lookup_insert = tf.function(self._lookup_insert, input_signature=[KEYS_SPEC])
        self.find = tf.function(self.values.lookup, input_signature=[KEYS_SPEC])
        self.apply = tf.function(self._apply, input_signature=[KEYS_SPEC, grads_spec])
        self.dim = dim

    def make_table(self, default_value: tf.Tensor):
        raise NotImplementedError

    def _lookup_insert(self, keys: tf.Tensor) -> tf.Tensor:
        rows = self.values.lookup(keys)
        missing = tf.where(tf.math.is_nan(rows[:, 0]))
        new_keys, position = tf.unique(tf.gather_nd(keys, missing))
        new_rows = _uniform_rows(tf.size(new_keys), self.dim)
        self.values.insert(new_keys, new_rows)
        return tf.tensor_scatter_nd_update(rows, missing, tf.gather(new_rows, position))

    def _apply(self, keys: tf.Tensor, grads: tf.Tensor) -> None:
        keys, grads = _sum_duplicates(keys, grads)
        accumulators = self.accumulators.lookup(keys) + tf.square(grads)
        values = self.values.lookup(keys) - (
            LEARNING_RATE * grads / tf.sqrt(accumulators + EPSILON))
        self.accumulators.insert(keys, accumulators)
        self.values.insert(keys, values)


class DenseBackend(TfHashBackend):
    name = "dense"

    def make_table(self, default_value: tf.Tensor):
        return tf.lookup.experimental.DenseHashTable(
            tf.int64, tf.float32, default_value=default_value, empty_key=EMPTY_KEY,
            deleted_key=DELETED_KEY, experimental_is_anonymous=True)


class MutableBackend(TfHashBackend):
    name = "mutable"

    def make_table(self, default_value: tf.Tensor):
        return tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.float32, default_value=default_value, experimental_is_anonymous=True)


class VariableBackend(Backend):
    """Fixed vocabulary: row index = key's index; values + accumulators, no keys."""

    name = "variable"
    inserts = False
    payload_floats_per_dim = 2
    payload_key_bytes = 0

    def __init__(self, num_keys: int, dim: int):
        self.values = tf.Variable(tf.random.uniform([num_keys, dim], -INIT_SCALE, INIT_SCALE))
        self.accumulators = tf.Variable(tf.fill([num_keys, dim], INITIAL_ACCUMULATOR))
        self.lookup_insert = tf.function(self._gather, input_signature=[KEYS_SPEC])
        self.find = tf.function(self._gather, input_signature=[KEYS_SPEC])
        self.apply = tf.function(self._apply, input_signature=[
            KEYS_SPEC, tf.TensorSpec([None, dim], tf.float32)])

    def inputs(self, indices: np.ndarray) -> tf.Tensor:
        return tf.constant(indices)

    def _gather(self, indices: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.values, indices)

    def _apply(self, indices: tf.Tensor, grads: tf.Tensor) -> None:
        indices, grads = _sum_duplicates(indices, grads)
        tf.raw_ops.ResourceSparseApplyAdagradV2(
            var=self.values.handle, accum=self.accumulators.handle, lr=LEARNING_RATE,
            epsilon=EPSILON, grad=grads, indices=indices)


def create_backend(name: str, num_keys: int, dim: int) -> Backend:
    if name == "des":
        return DesBackend(dim)
    if name == "dense":
        return DenseBackend(dim)
    if name == "mutable":
        return MutableBackend(dim)
    return VariableBackend(num_keys, dim)


# ---------------------------------------------------------------------------- timing


def timed_call(op: Callable[..., object], *args: tf.Tensor) -> float:
    """Seconds one call of `op` takes (eager CPU calls return when the op is done)."""
    start = time.perf_counter()
    op(*args)
    return time.perf_counter() - start


def fill_throughput(backend: Backend, workload: Workload) -> float:
    """Keys/s of inserting every key of the key space, batch by batch."""
    backend.lookup_insert(backend.inputs(np.zeros([0], np.int64)))  # trace and warm up
    seconds = sum(timed_call(backend.lookup_insert,
                             backend.inputs(workload.fill_indices(batch)))
                  for batch in range(workload.num_fill_batches()))
    return workload.key_space.num_keys / seconds


def throughput(op: Callable[..., object], batch_args: Callable[[int], tuple],
               batch_size: int, args: argparse.Namespace) -> float:
    """Keys/s of `op` over batches batch_args(1), batch_args(2), ... after one warm-up
    call on batch_args(0), until both --min_batches and --min_seconds are reached."""
    op(*batch_args(0))
    seconds, batches = 0.0, 0
    while seconds < args.min_seconds or batches < args.min_batches:
        batches += 1
        seconds += timed_call(op, *batch_args(batches))
    return batches * batch_size / seconds


def lookup_insert_args(backend: Backend, workload: Workload) -> Callable[[int], tuple]:
    if not backend.inserts:
        return lambda batch: (backend.inputs(workload.pool[batch % POOL_BATCHES]),)
    return lambda batch: (backend.inputs(workload.indices_with_new_keys(batch)),)


def pool_args(backend: Backend, workload: Workload, with_gradients: bool
              ) -> Callable[[int], tuple]:
    inputs = [backend.inputs(indices) for indices in workload.pool]
    if with_gradients:
        return lambda batch: (inputs[batch % POOL_BATCHES],
                              workload.gradients[batch % POOL_BATCHES])
    return lambda batch: (inputs[batch % POOL_BATCHES],)


# ---------------------------------------------------------------------------- memory

_LIBC = ctypes.CDLL("libc.so.6")


def settled_rss() -> int:
    """Process RSS after returning freed heap memory to the OS."""
    gc.collect()
    _LIBC.malloc_trim(0)
    return psutil.Process().memory_info().rss


# ---------------------------------------------------------------------------- cases


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def skip_reason(name: str, num_keys: int, dim: int, skips: list[str]) -> Optional[str]:
    for rule in skips:
        parts = rule.split(":")
        if parts[0] == name and (len(parts) < 2 or int(parts[1]) == num_keys) and (
                len(parts) < 3 or int(parts[2]) == dim):
            return f"skipped by --skip {rule}"
    return None


def run_case(name: str, workload: Workload, args: argparse.Namespace) -> dict:
    num_keys, dim = workload.key_space.num_keys, workload.dim
    rss_before = settled_rss()
    start = time.perf_counter()
    backend = create_backend(name, num_keys, dim)
    result: dict = {"fill_keys_per_s": None}
    if backend.inserts:
        result["fill_keys_per_s"] = fill_throughput(backend, workload)
    rss_bytes_per_row = (settled_rss() - rss_before) / num_keys
    progress(f"  {name}: filled {num_keys} rows in {time.perf_counter() - start:.1f}s")
    result["lookup_insert_keys_per_s"] = throughput(
        backend.lookup_insert, lookup_insert_args(backend, workload), workload.batch_size, args)
    result["find_keys_per_s"] = throughput(
        backend.find, pool_args(backend, workload, False), workload.batch_size, args)
    result["apply_keys_per_s"] = throughput(
        backend.apply, pool_args(backend, workload, True), workload.batch_size, args)
    payload = backend.payload_bytes_per_row(dim)
    api_bytes = backend.api_bytes_per_row()
    bytes_per_row = rss_bytes_per_row if api_bytes is None else api_bytes
    result.update(api_bytes_per_row=api_bytes, rss_bytes_per_row=rss_bytes_per_row,
                  payload_bytes_per_row=payload, memory_ratio=bytes_per_row / payload,
                  memory_source="RSS estimate" if api_bytes is None else "memory_bytes()",
                  case_seconds=time.perf_counter() - start)
    return result


def run_all(args: argparse.Namespace) -> list[dict]:
    results = []
    cases = [(n, d, b) for n in args.sizes for d in args.dims for b in args.backends]
    done = 0
    for num_keys in args.sizes:
        key_space = KeySpace.create(num_keys, np.random.default_rng([SEED, num_keys]))
        for dim in args.dims:
            workload = Workload.create(key_space, dim, args)
            for name in args.backends:
                done += 1
                record = {"backend": name, "num_keys": num_keys, "dim": dim}
                reason = skip_reason(name, num_keys, dim, args.skip)
                progress(f"[{done}/{len(cases)}] {name} num_keys={num_keys} dim={dim}"
                         + (f": {reason}" if reason else ""))
                if reason:
                    results.append({**record, "skipped": reason})
                    continue
                results.append({**record, "skipped": None, **run_case(name, workload, args)})
                gc.collect()
    return results


# ---------------------------------------------------------------------------- report


def comparisons(results: list[dict]) -> list[dict]:
    """des / dense throughput ratios and des's memory ratio per (num_keys, dim)."""
    by_case = {(r["backend"], r["num_keys"], r["dim"]): r for r in results if not r["skipped"]}
    rows = []
    for (name, num_keys, dim), des_result in by_case.items():
        dense = by_case.get(("dense", num_keys, dim))
        if name != "des":
            continue
        row = {"num_keys": num_keys, "dim": dim, "des_memory_ratio": des_result["memory_ratio"]}
        for op in ("lookup_insert", "find", "apply"):
            key = f"{op}_keys_per_s"
            row[f"{op}_vs_dense"] = des_result[key] / dense[key] if dense else None
        rows.append(row)
    return rows


def _rate(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f} M"


def _ratio(value: Optional[float], target: Optional[str] = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}x" + (f" ({target})" if target else "")


def header(args: argparse.Namespace) -> str:
    new_keys = round(args.batch_size * args.new_key_fraction)
    return "\n".join([
        "# Embedding table benchmark",
        "",
        f"{platform.node()}: {os.cpu_count()} CPU cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, TensorFlow {tf.__version__}. "
        f"Batches of {args.batch_size} int64 keys; throughput in million keys/s; each "
        f"operation warmed up once, then timed for >= {args.min_seconds}s and "
        f">= {args.min_batches} batches.",
        "",
        "- **fill**: lookup-with-insert of all num_keys keys into an empty table, every key "
        "new (capacity_hint 0 / default bucket count).",
        f"- **lookup-with-insert**: on the filled table; Zipf(a={args.zipf_a}) keys with "
        f"{new_keys} brand-new keys per batch ({args.new_key_fraction:.1%}), which are "
        "inserted. TF hash tables: lookup with a NaN default, then insert the missing keys "
        "with uniform rows. variable: tf.gather (a fixed vocabulary cannot insert).",
        "- **find**: lookup without insert of Zipf batches (every key present).",
        "- **apply**: Adagrad on Zipf batches, duplicate keys' gradients summed. des: "
        "apply_gradients; TF hash tables: tf.unique + unsorted_segment_sum, look up values "
        "and accumulators (a second table), update with TF ops, insert both back; variable: "
        "the same dedup + ResourceSparseApplyAdagradV2.",
        "- **bytes/row**: des: memory_bytes()/size() after the fill; others: process RSS "
        "growth over the fill divided by num_keys (an estimate). **payload/row** is what the "
        "backend holds after the fill: des 8 + 4·dim + 4·dim (key, values, Adagrad slot); "
        "dense/mutable 8 + 4·dim (their accumulator table only fills during apply); "
        "variable 4·dim + 4·dim (no keys).",
    ])


def results_table(results: list[dict]) -> str:
    lines = ["| backend | num_keys | dim | fill | lookup-with-insert | find | apply (Adagrad) "
             "| bytes/row | RSS bytes/row | payload/row | memory ratio |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        case = f"| {r['backend']} | {r['num_keys']} | {r['dim']} "
        if r["skipped"]:
            lines.append(case + f"| {r['skipped']} |" + " |" * 7)
            continue
        bytes_per_row = r["api_bytes_per_row"] or r["rss_bytes_per_row"]
        lines.append(
            case + f"| {_rate(r['fill_keys_per_s'])} | {_rate(r['lookup_insert_keys_per_s'])} "
            f"| {_rate(r['find_keys_per_s'])} | {_rate(r['apply_keys_per_s'])} "
            f"| {bytes_per_row:.0f} ({r['memory_source']}) | {r['rss_bytes_per_row']:.0f} "
            f"| {r['payload_bytes_per_row']} | {_ratio(r['memory_ratio'])} |")
    return "\n".join(lines)


def comparison_table(rows: list[dict]) -> str:
    lines = ["| num_keys | dim | des/dense lookup-with-insert | des/dense find "
             "| des/dense apply | des memory / payload |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        target = "target >= 2x" if r["dim"] == 16 else None
        lines.append(
            f"| {r['num_keys']} | {r['dim']} | {_ratio(r['lookup_insert_vs_dense'], target)} "
            f"| {_ratio(r['find_vs_dense'], target)} | {_ratio(r['apply_vs_dense'])} "
            f"| {_ratio(r['des_memory_ratio'], 'target <= 1.3x')} |")
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    cases = sorted({(r["num_keys"], r["dim"]) for r in results})
    labels = [f"{n / 1e6:g}M keys\ndim {d}" for n, d in cases]
    backends = list(dict.fromkeys(r["backend"] for r in results))
    width = 0.8 / len(backends)
    figure, axes = plt.subplots(1, len(OPERATIONS), figsize=(5 * len(OPERATIONS), 4.5))
    for axis, op in zip(axes, OPERATIONS):
        for b, name in enumerate(backends):
            values = [next((r.get(f"{op}_keys_per_s") or 0.0 for r in results
                            if (r["backend"], r["num_keys"], r["dim"]) == (name, n, d)), 0.0)
                      for n, d in cases]
            positions = np.arange(len(cases)) + (b - (len(backends) - 1) / 2) * width
            axis.bar(positions, np.array(values) / 1e6, width, label=name)
        axis.set_title(OPERATION_TITLES[op])
        axis.set_xticks(np.arange(len(cases)), labels)
        axis.set_yscale("log")
        axis.set_ylabel("million keys/s (log)")
    axes[0].legend()
    figure.suptitle("Embedding table throughput (missing bar: skipped or not applicable)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_json(args: argparse.Namespace, results: list[dict], compared: list[dict],
               seconds: float, path: Path) -> None:
    report = {
        "config": {**vars(args), "out_dir": str(args.out_dir)},
        "machine": {"host": platform.node(), "cpu_count": os.cpu_count(),
                    "ram_bytes": psutil.virtual_memory().total,
                    "tensorflow": tf.__version__, "des_tf": des.__version__},
        "total_seconds": seconds,
        "results": results,
        "des_vs_dense": compared,
    }
    path.write_text(json.dumps(report, indent=2) + "\n")


# ---------------------------------------------------------------------------- main


def int_list(text: str) -> list[int]:
    return [int(item) for item in text.split(",") if item]


def backend_list(text: str) -> list[str]:
    names = [item for item in text.split(",") if item]
    unknown = set(names) - set(BACKENDS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown backends {sorted(unknown)}; "
                                         f"choose from {BACKENDS}")
    return names


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int_list, default=[1_000_000, 10_000_000],
                        help="comma-separated numbers of distinct keys per table")
    parser.add_argument("--dims", type=int_list, default=[16, 64], help="row widths")
    parser.add_argument("--backends", type=backend_list, default=list(BACKENDS),
                        help=f"comma-separated subset of {','.join(BACKENDS)}")
    parser.add_argument("--skip", action="append", default=[],
                        metavar="BACKEND[:NUM_KEYS[:DIM]]",
                        help="leave a case out (repeatable), e.g. mutable:10000000:64")
    parser.add_argument("--batch_size", type=int, default=65536)
    parser.add_argument("--zipf_a", type=float, default=1.1, help="Zipf exponent (> 1)")
    parser.add_argument("--new_key_fraction", type=float, default=0.005,
                        help="share of brand-new keys in each lookup-with-insert batch")
    parser.add_argument("--min_seconds", type=float, default=1.0,
                        help="least op time measured per operation")
    parser.add_argument("--min_batches", type=int, default=5,
                        help="least batches measured per operation")
    parser.add_argument("--out_dir", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    largest_index = max(args.sizes) + 10**9  # room for the lookup-with-insert new keys
    assert DELETED_KEY_INDEX > largest_index, "a key would equal DenseHashTable's deleted_key"
    return args


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    results = run_all(args)
    compared = comparisons(results)
    seconds = time.perf_counter() - start
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args, results, compared, seconds, args.out_dir / "table_bench.json")
    plot(results, args.out_dir / "table_bench.png")
    print("\n\n".join([header(args), results_table(results), comparison_table(compared),
                       f"Total run time: {seconds:.0f}s."]))
    progress(f"wrote {args.out_dir / 'table_bench.json'} and {args.out_dir / 'table_bench.png'}")


if __name__ == "__main__":
    main()

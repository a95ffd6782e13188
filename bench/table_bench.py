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

Every timed operation is a `tf.function`; each is warmed up once, then timed in
`--rounds` rounds, each of at least `--min_batches` batches and `--min_seconds` / rounds
seconds of op time; the fastest round is reported (the JSON has every round), which
keeps other processes on a shared machine from dominating the result. Keys are int64
spread over the whole 64-bit range: a Zipf rank is folded into [0, num_keys), mapped
through a fixed random permutation to a row index, and the index i becomes the key
(i + 1) * KEY_MULTIPLIER mod 2^64, so hot keys are neither small nor adjacent.

Memory, per row after the fill, compared with the raw payload the backend holds then:
des reports `memory_bytes() / size()`; the others are estimated from how much the bytes
in use grew over the fill: TF's CPU allocator (`tf.config.experimental.get_memory_info`)
for the tensor-backed dense table and variables, glibc's `mallinfo2` for MutableHashTable
(std::unordered_map nodes). Process RSS is not used: TF's CPU allocator keeps freed
memory in a pool, so RSS says little about what a table holds. The JSON also has the
RSS and malloc deltas of every case (des included, as a cross-check).

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
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Optional  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import tensorflow as tf  # noqa: E402

import des_tf as des  # noqa: E402
from des_tf import ops_library  # noqa: E402

# Every case builds fresh tf.functions from the same methods, by design; TF would warn
# about "retracing" each time.
tf.get_logger().setLevel("ERROR")

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
# DenseHashTable's sentinels. No benchmark key equals them: key 0 would need the index
# 2^64 - 1 and key -1 the index DELETED_KEY_INDEX, both far beyond every key space.
EMPTY_KEY = 0
DELETED_KEY = -1
DELETED_KEY_INDEX = (-pow(KEY_MULTIPLIER, -1, 2**64)) % 2**64 - 1
assert DELETED_KEY_INDEX > 2**48, "DELETED_KEY must lie far beyond every key space"

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
        key_rng = np.random.default_rng([SEED, key_space.num_keys])  # same keys for every dim
        pool = [key_space.zipf_indices(key_rng, args.batch_size, args.zipf_a)
                for _ in range(POOL_BATCHES)]
        gradient_rng = np.random.default_rng([SEED, key_space.num_keys, dim])
        gradients = [tf.constant(gradient_rng.standard_normal((args.batch_size, dim),
                                                              np.float32))
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
    tensor_backed = False       # its storage comes from TF's allocator, not from malloc
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
        self.step = tf.constant(1, tf.int64)
        self.lookup_insert = tf.function(self.table.lookup, input_signature=[KEYS_SPEC])
        self.find = tf.function(lambda keys: self.table.find(keys), input_signature=[KEYS_SPEC])
        self.apply = tf.function(self._apply, input_signature=[
            KEYS_SPEC, tf.TensorSpec([None, dim], tf.float32)])

    def _apply(self, keys: tf.Tensor, grads: tf.Tensor) -> None:
        self.table.apply_gradients(keys, grads, self.step)

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
        self.dim = dim
        self.values = self.make_table(tf.fill([dim], np.float32("nan")))
        self.accumulators = self.make_table(tf.fill([dim], np.float32(INITIAL_ACCUMULATOR)))
        self.lookup_insert = tf.function(self._lookup_insert, input_signature=[KEYS_SPEC])
        self.find = tf.function(self.values.lookup, input_signature=[KEYS_SPEC])
        self.apply = tf.function(self._apply, input_signature=[
            KEYS_SPEC, tf.TensorSpec([None, dim], tf.float32)])

    def make_table(self, default_value: tf.Tensor) -> tf.lookup.experimental.MutableHashTable:
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
    tensor_backed = True

    def make_table(self, default_value: tf.Tensor) -> tf.lookup.experimental.DenseHashTable:
        return tf.lookup.experimental.DenseHashTable(
            tf.int64, tf.float32, default_value=default_value, empty_key=EMPTY_KEY,
            deleted_key=DELETED_KEY, experimental_is_anonymous=True)


class MutableBackend(TfHashBackend):
    name = "mutable"

    def make_table(self, default_value: tf.Tensor) -> tf.lookup.experimental.MutableHashTable:
        return tf.lookup.experimental.MutableHashTable(
            tf.int64, tf.float32, default_value=default_value, experimental_is_anonymous=True)


class VariableBackend(Backend):
    """A fixed vocabulary: the operations take row indices instead of keys."""

    name = "variable"
    inserts = False
    tensor_backed = True
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


def round_throughputs(op: Callable[..., object], batch_args: Callable[[int], tuple],
                      batch_size: int, args: argparse.Namespace) -> list[float]:
    """Keys/s of `op` in each of --rounds rounds over batches batch_args(1), (2), ...,
    after one warm-up call on batch_args(0). A round ends once it has run --min_batches
    batches and --min_seconds / --rounds seconds."""
    op(*batch_args(0))
    rates, batch = [], 0
    for _ in range(args.rounds):
        seconds, batches = 0.0, 0
        while seconds < args.min_seconds / args.rounds or batches < args.min_batches:
            batch, batches = batch + 1, batches + 1
            seconds += timed_call(op, *batch_args(batch))
        rates.append(batches * batch_size / seconds)
    return rates


def lookup_insert_args(backend: Backend, workload: Workload) -> Callable[[int], tuple]:
    """Batch -> arguments of lookup-with-insert: with new keys where the backend inserts."""
    if not backend.inserts:
        return lambda batch: (backend.inputs(workload.pool[batch % POOL_BATCHES]),)
    return lambda batch: (backend.inputs(workload.indices_with_new_keys(batch)),)


def pool_args(backend: Backend, workload: Workload, with_gradients: bool
              ) -> Callable[[int], tuple]:
    """Batch -> arguments from the Zipf pool (converted once), plus gradients for apply."""
    inputs = [backend.inputs(indices) for indices in workload.pool]
    if with_gradients:
        return lambda batch: (inputs[batch % POOL_BATCHES],
                              workload.gradients[batch % POOL_BATCHES])
    return lambda batch: (inputs[batch % POOL_BATCHES],)


# ---------------------------------------------------------------------------- memory

class _MallInfo2(ctypes.Structure):
    _fields_ = [(field, ctypes.c_size_t) for field in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def tf_allocator_bytes() -> Optional[int]:
    """Bytes in use in TF's CPU allocator; None where it keeps no statistics (the plain
    allocator, with TF_ENABLE_ONEDNN_OPTS=0, which takes its memory from malloc)."""
    try:
        return tf.config.experimental.get_memory_info("CPU:0")["current"]
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class MemorySnapshot:
    """Process memory counters after a garbage collection and malloc_trim."""

    rss: int
    malloc_in_use: int
    tf_in_use: Optional[int]

    @staticmethod
    def take() -> "MemorySnapshot":
        gc.collect()
        _LIBC.malloc_trim(0)
        info = _LIBC.mallinfo2()
        return MemorySnapshot(psutil.Process().memory_info().rss,
                              info.uordblks + info.hblkhd, tf_allocator_bytes())


def memory_growth(backend: Backend, before: MemorySnapshot, after: MemorySnapshot
                  ) -> tuple[int, str]:
    """(bytes the backend's storage grew by, which counter says so)."""
    if backend.tensor_backed and after.tf_in_use is not None:
        return after.tf_in_use - before.tf_in_use, "TF allocator"
    return after.malloc_in_use - before.malloc_in_use, "malloc"


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
    memory_before = MemorySnapshot.take()
    start = time.perf_counter()
    backend = create_backend(name, num_keys, dim)
    result: dict = {"fill_keys_per_s": None}
    if backend.inserts:
        result["fill_keys_per_s"] = fill_throughput(backend, workload)
    result.update(memory_per_row(backend, memory_before, MemorySnapshot.take(), num_keys, dim))
    timed = {"lookup_insert": (backend.lookup_insert, lookup_insert_args(backend, workload)),
             "find": (backend.find, pool_args(backend, workload, False)),
             "apply": (backend.apply, pool_args(backend, workload, True))}
    for op, (function, batch_args) in timed.items():
        rates = round_throughputs(function, batch_args, workload.batch_size, args)
        result[f"{op}_keys_per_s"] = max(rates)
        result[f"{op}_round_keys_per_s"] = rates
    result["case_seconds"] = time.perf_counter() - start
    result["load_average_1m"] = os.getloadavg()[0]
    return result


def memory_per_row(backend: Backend, before: MemorySnapshot, after: MemorySnapshot,
                   num_keys: int, dim: int) -> dict:
    growth, counter = memory_growth(backend, before, after)
    api_bytes = backend.api_bytes_per_row()
    bytes_per_row = growth / num_keys if api_bytes is None else api_bytes
    payload = backend.payload_bytes_per_row(dim)
    return {"bytes_per_row": bytes_per_row,
            "memory_source": f"{counter} growth" if api_bytes is None else "memory_bytes()",
            "payload_bytes_per_row": payload, "memory_ratio": bytes_per_row / payload,
            "malloc_growth_bytes": after.malloc_in_use - before.malloc_in_use,
            "tf_allocator_growth_bytes": (None if after.tf_in_use is None
                                          else after.tf_in_use - before.tf_in_use),
            "rss_growth_bytes": after.rss - before.rss}


def warm_up(args: argparse.Namespace) -> None:
    """Runs every backend and dim once on a two-batch table, so one-time costs (first
    kernel runs, allocator pools, caches) land on no measured case."""
    quick = argparse.Namespace(**{**vars(args), "min_seconds": 0.0, "min_batches": 1,
                                  "rounds": 1})
    key_space = KeySpace.create(2 * args.batch_size, np.random.default_rng(SEED))
    for dim in args.dims:
        workload = Workload.create(key_space, dim, quick)
        for name in args.backends:
            run_case(name, workload, quick)
            gc.collect()


def measure(name: str, workload: Workload, args: argparse.Namespace, label: str) -> dict:
    """One result record: the case's measurements, or why it was skipped."""
    num_keys, dim = workload.key_space.num_keys, workload.dim
    record = {"backend": name, "num_keys": num_keys, "dim": dim,
              "skipped": skip_reason(name, num_keys, dim, args.skip)}
    if record["skipped"]:
        progress(f"{label} {name} num_keys={num_keys} dim={dim}: {record['skipped']}")
        return record
    progress(f"{label} {name} num_keys={num_keys} dim={dim} ...")
    record.update(run_case(name, workload, args))
    gc.collect()  # frees the case's table: its tf.functions hold it in reference cycles
    progress(f"{label} done in {record['case_seconds']:.1f}s (load average "
             f"{record['load_average_1m']:.1f}): " + ", ".join(
                 f"{op} {_rate(record[f'{op}_keys_per_s'])}" for op in OPERATIONS) + " keys/s")
    return record


def run_all(args: argparse.Namespace) -> list[dict]:
    progress("warming up")
    warm_up(args)
    results: list[dict] = []
    total = len(args.sizes) * len(args.dims) * len(args.backends)
    for num_keys in args.sizes:
        key_space = KeySpace.create(num_keys, np.random.default_rng([SEED, num_keys]))
        for dim in args.dims:
            workload = Workload.create(key_space, dim, args)
            for name in args.backends:
                results.append(measure(name, workload, args, f"[{len(results) + 1}/{total}]"))
    return results


# ---------------------------------------------------------------------------- report


def comparisons(results: list[dict]) -> list[dict]:
    """des / dense throughput ratios and des's memory ratio per (num_keys, dim)."""
    by_case = {(r["backend"], r["num_keys"], r["dim"]): r for r in results if not r["skipped"]}
    rows = []
    for (name, num_keys, dim), des_result in by_case.items():
        if name != "des":
            continue
        dense = by_case.get(("dense", num_keys, dim))
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
        f"operation warmed up once, then timed in {args.rounds} rounds of >= "
        f"{args.min_seconds / args.rounds:g}s and >= {args.min_batches} batches; the fastest "
        "round is shown (fill: one pass). **load** is the 1-minute load average when the case "
        "ended; the benchmark itself accounts for 1-2 of it, more means other processes "
        "shared the cores and the case's numbers are low.",
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
        "- **bytes/row**: des: memory_bytes()/size() after the fill; others: growth of the "
        "bytes in use over the fill / num_keys, from TF's CPU allocator (dense, variable) or "
        "malloc (mutable), an estimate. **payload/row** is what the "
        "backend holds after the fill: des 8 + 4·dim + 4·dim (key, values, Adagrad slot); "
        "dense/mutable 8 + 4·dim (their accumulator table only fills during apply); "
        "variable 4·dim + 4·dim (no keys).",
    ])


def results_table(results: list[dict]) -> str:
    lines = ["| backend | num_keys | dim | fill | lookup-with-insert | find | apply (Adagrad) "
             "| bytes/row | payload/row | memory ratio | load |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        case = f"| {r['backend']} | {r['num_keys']} | {r['dim']} "
        if r["skipped"]:
            lines.append(case + f"| {r['skipped']} |" + " |" * 7)
            continue
        lines.append(
            case + f"| {_rate(r['fill_keys_per_s'])} | {_rate(r['lookup_insert_keys_per_s'])} "
            f"| {_rate(r['find_keys_per_s'])} | {_rate(r['apply_keys_per_s'])} "
            f"| {r['bytes_per_row']:.0f} ({r['memory_source']}) "
            f"| {r['payload_bytes_per_row']} | {_ratio(r['memory_ratio'])} "
            f"| {r['load_average_1m']:.1f} |")
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


def _rates(results: list[dict], name: str, op: str, cases: list[tuple[int, int]]
           ) -> np.ndarray:
    """Million keys/s of `name` doing `op` in each case; NaN (no bar) where it has none."""
    by_case = {(r["num_keys"], r["dim"]): r.get(f"{op}_keys_per_s")
               for r in results if r["backend"] == name}
    return np.array([(by_case.get(case) or np.nan) / 1e6 for case in cases])


def plot(results: list[dict], batch_size: int, path: Path) -> None:
    cases = sorted({(r["num_keys"], r["dim"]) for r in results})
    backends = list(dict.fromkeys(r["backend"] for r in results))
    width = 0.8 / len(backends)
    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for axis, op in zip(axes.flat, OPERATIONS):
        for b, name in enumerate(backends):
            positions = np.arange(len(cases)) + (b - (len(backends) - 1) / 2) * width
            axis.bar(positions, _rates(results, name, op, cases), width, label=name)
        axis.set_title(OPERATION_TITLES[op])
        axis.set_xticks(np.arange(len(cases)),
                        [f"{n / 1e6:g}M keys\ndim {d}" for n, d in cases])
        axis.set_xlim(-0.5, len(cases) - 0.5)
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        axis.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axis.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_ylabel("million keys/s (log scale)")
    axes.flat[0].legend()
    figure.suptitle(f"Embedding table throughput, batches of {batch_size} keys "
                    "(no bar: skipped or not applicable)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def op_library_fingerprint() -> dict:
    """Which build of des-tf's op library was measured."""
    path = Path(ops_library.library_path())
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "modified": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))}


def write_json(args: argparse.Namespace, results: list[dict], compared: list[dict],
               seconds: float, library: dict, path: Path) -> None:
    report = {
        "config": {**vars(args), "out_dir": str(args.out_dir)},
        "machine": {"host": platform.node(), "cpu_count": os.cpu_count(),
                    "ram_bytes": psutil.virtual_memory().total,
                    "tensorflow": tf.__version__, "des_tf": des.__version__,
                    "des_ops_library": library},
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
    parser.add_argument("--min_seconds", type=float, default=2.0,
                        help="least op time measured per operation, over all rounds")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timing rounds per operation; the fastest is reported")
    parser.add_argument("--min_batches", type=int, default=3,
                        help="least batches measured per round")
    parser.add_argument("--out_dir", type=Path, default=Path("bench/results"))
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    library = op_library_fingerprint()
    start = time.perf_counter()
    results = run_all(args)
    compared = comparisons(results)
    seconds = time.perf_counter() - start
    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_json(args, results, compared, seconds, library, args.out_dir / "table_bench.json")
    plot(results, args.batch_size, args.out_dir / "table_bench.png")
    print("\n\n".join([header(args), results_table(results), comparison_table(compared),
                       f"Total run time: {seconds:.0f}s."]))
    progress(f"wrote {args.out_dir / 'table_bench.json'} and {args.out_dir / 'table_bench.png'}")


if __name__ == "__main__":
    main()

"""Deterministic synthetic Criteo-like data with a known, learnable click model.

Ids follow a Zipf law per field over Criteo's 26 categorical cardinalities; optional
multi-hot fields (user-history-like id lists) are added. Labels come from a hidden
logistic model: per-id weights, a few pairwise (FM-like) interactions, the integer
features and the pooled multi-hot ids. The hidden model's own AUC on the labels it drew
is the ceiling a trained model can approach. Everything is a pure function of the seed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Callable

import numpy as np

from des_tf import fileio

# Distinct values of C1..C26 in the Criteo Kaggle (display advertising challenge) data.
CRITEO_CARDINALITIES = (1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683,
                        8351593, 3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18,
                        15, 286181, 105, 142572)
_CHUNK_ROWS = 65536
_LATENT_DIM = 4
_INTERACTING_PAIRS = ((0, 1), (2, 3), (4, 10), (5, 13), (8, 16), (19, 25))
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclasses.dataclass(frozen=True)
class MultiHotSpec:
    """A generated id-list column: lengths ~ Poisson(mean_length), ids Zipf over vocabulary."""

    name: str
    mean_length: float
    vocabulary: int = 1_000_000


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """What to generate. `positive_rate` sets the hidden model's bias (Criteo: ~0.26)."""

    rows: int
    seed: int = 0
    cardinalities: tuple[int, ...] = CRITEO_CARDINALITIES
    num_integer: int = 13
    multi_hot: tuple[MultiHotSpec, ...] = ()
    zipf_exponent: float = 1.1
    positive_rate: float = 0.25

    def fingerprint(self) -> str:
        """A short name for the cache: equal specs give equal files."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hashed(seed: int, table: int, ids: np.ndarray, salt: int = 0) -> np.ndarray:
    """A uint64 per id, fixed by (seed, table, id, salt)."""
    with np.errstate(over="ignore"):
        base = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(
            (table << 8) | salt)
    return _mix64(ids.astype(np.uint64) ^ _mix64(np.asarray(base)))


def _normal(seed: int, table: int, ids: np.ndarray, salt: int = 0) -> np.ndarray:
    """A standard normal draw per id (Box-Muller on two hashed uniforms)."""
    scale = 1.0 / float(1 << 53)
    u1 = ((_hashed(seed, table, ids, 2 * salt) >> np.uint64(11)).astype(np.float64) + 1) * scale
    u2 = (_hashed(seed, table, ids, 2 * salt + 1) >> np.uint64(11)).astype(np.float64) * scale
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _zipf_ranks(rng: np.random.Generator, vocabulary: int, exponent: float,
                size: int) -> np.ndarray:
    """Ranks 0..vocabulary-1 with P(r) ~ (r + 1)^-exponent (inverse CDF of the
    continuous power law on [1, vocabulary + 1))."""
    u = rng.random(size)
    one_minus = 1.0 - exponent
    top = (vocabulary + 1.0) ** one_minus
    x = (1.0 + u * (top - 1.0)) ** (1.0 / one_minus)
    return np.minimum(np.floor(x).astype(np.int64) - 1, vocabulary - 1)


def _hex(values: np.ndarray, digits: int) -> list[str]:
    """Lower-case fixed-width hex strings of uint64 values, vectorised."""
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(15)
    chars = _HEX_DIGITS[nibbles.astype(np.intp)]
    return chars.view(f"S{digits}").ravel().astype(f"U{digits}").tolist()


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic, ties counted half)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    positives = labels.astype(bool)
    p, n = positives.sum(), (~positives).sum()
    if p == 0 or n == 0:
        return float("nan")
    return float((ranks[positives].sum() - p * (p + 1) / 2.0) / (p * n))


class _HiddenModel:
    """The click model labels are drawn from: logits of a chunk of generated features."""

    def __init__(self, spec: SyntheticSpec):
        self.spec = spec
        rng = np.random.default_rng([spec.seed, 1])
        self.integer_weights = rng.normal(0.0, 0.15, spec.num_integer)
        self.integer_centre = 1.5
        self.bias: float | None = None  # set from the first chunk

    def logits(self, categorical: list[np.ndarray], integers: np.ndarray, missing: np.ndarray,
               multi_hot: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        seed = self.spec.seed
        logit = np.full(len(integers), self.bias or 0.0)
        for field, ranks in enumerate(categorical):
            logit += 0.35 * _normal(seed, field, ranks)
        for a, b in _INTERACTING_PAIRS:
            if max(a, b) < len(categorical):
                for k in range(_LATENT_DIM):
                    logit += (0.6 * _normal(seed, a, categorical[a], salt=1 + k)
                              * 0.6 * _normal(seed, b, categorical[b], salt=1 + k))
        transformed = np.log1p(np.maximum(integers, 0)) - self.integer_centre
        logit += np.where(missing, 0.0, transformed) @ self.integer_weights
        for m, (ranks, lengths) in enumerate(multi_hot):
            scale = 0.8 / np.sqrt(max(self.spec.multi_hot[m].mean_length, 1.0))
            weights = _normal(seed, 100 + m, ranks)
            rows = np.repeat(np.arange(len(lengths)), lengths)
            logit += scale * np.bincount(rows, weights, minlength=len(lengths))
        return logit

    def fit_bias(self, logits: np.ndarray) -> None:
        """Bias so the first chunk's mean click probability is `positive_rate`."""
        low, high = -20.0, 20.0
        for _ in range(60):
            mid = (low + high) / 2
            rate = np.mean(1.0 / (1.0 + np.exp(-(logits + mid))))
            low, high = (mid, high) if rate < self.spec.positive_rate else (low, mid)
        self.bias = (low + high) / 2


def _chunk_lines(spec: SyntheticSpec, model: _HiddenModel, rng: np.random.Generator,
                 rows: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(lines, labels, click probabilities) of one chunk."""
    categorical = [_zipf_ranks(rng, v, spec.zipf_exponent, rows) for v in spec.cardinalities]
    integers = np.floor(rng.lognormal(1.0, 1.5, (rows, spec.num_integer))).astype(np.int64)
    missing = rng.random((rows, spec.num_integer)) < 0.2
    if spec.num_integer > 1:  # like Criteo's I2, a few small negative counts
        negative = rng.random(rows) < 0.03
        integers[negative, 1] = -rng.integers(1, 4, negative.sum())
    multi_hot = []
    for field in spec.multi_hot:
        lengths = rng.poisson(field.mean_length, rows)
        multi_hot.append((_zipf_ranks(rng, field.vocabulary, spec.zipf_exponent,
                                      int(lengths.sum())), lengths))
    logits = model.logits(categorical, integers, missing, multi_hot)
    if model.bias is None:
        model.fit_bias(logits)
        logits = logits + model.bias
    probabilities = 1.0 / (1.0 + np.exp(-logits))
    labels = (rng.random(rows) < probabilities).astype(np.int64)

    integer_text = np.where(missing, "", integers.astype(str))
    columns = [labels.astype(str).tolist()]
    columns += [integer_text[:, j].tolist() for j in range(spec.num_integer)]
    columns += [_hex(_hashed(spec.seed, 1000 + f, r) & np.uint64(0xFFFFFFFF), 8)
                for f, r in enumerate(categorical)]
    for m, (ranks, lengths) in enumerate(multi_hot):
        ids = _hex(_hashed(spec.seed, 2000 + m, ranks), 16)
        ends = np.cumsum(lengths)
        columns.append([",".join(ids[e - n:e]) for e, n in zip(ends.tolist(), lengths.tolist())])
    lines = ["\t".join(fields) for fields in zip(*columns)]
    return lines, labels, probabilities


def generate(path: str | os.PathLike, spec: SyntheticSpec,
             progress: Callable[[str], None] = print) -> dict:
    """Writes `spec.rows` Criteo-format lines to `path`, on any TensorFlow file system
    (atomically: a temporary file, then rename), and returns facts about it, the hidden
    model's AUC included."""
    path = str(path)
    fileio.makedirs(fileio.parent(path))
    temporary = f"{path}.partial-{os.getpid()}"
    rng = np.random.default_rng([spec.seed, 0])
    model = _HiddenModel(spec)
    labels, probabilities = [], []
    with fileio.open_for_writing(temporary, "w") as out:
        for start in range(0, spec.rows, _CHUNK_ROWS):
            lines, chunk_labels, chunk_probabilities = _chunk_lines(
                spec, model, rng, min(_CHUNK_ROWS, spec.rows - start))
            out.write("\n".join(lines) + "\n")
            labels.append(chunk_labels)
            probabilities.append(chunk_probabilities)
            progress(f"synthetic data: {start + len(lines):,} / {spec.rows:,} rows")
    labels, probabilities = np.concatenate(labels), np.concatenate(probabilities)
    info = {"path": path, "rows": spec.rows, "seed": spec.seed,
            "positive_rate": float(labels.mean()), "ceiling_auc": auc(labels, probabilities),
            "ceiling_logloss": float(-np.mean(labels * np.log(probabilities) + (1 - labels)
                                              * np.log1p(-probabilities))),
            "multi_hot": [f.name for f in spec.multi_hot]}
    fileio.rename(temporary, path)
    progress(f"synthetic data: positive rate {info['positive_rate']:.3f}; the hidden model's "
             f"own AUC (the ceiling for a trained model) is {info['ceiling_auc']:.4f}")
    return info


def cached(directory: str | os.PathLike, spec: SyntheticSpec,
           progress: Callable[[str], None] = print) -> dict:
    """The file for `spec` under `directory` (any TensorFlow file system), generated once.
    On a local disk concurrent callers (the ranks of one job) wait on a lock while the
    first generates it; elsewhere, where there is no lock, each caller that finds no file
    generates it under its own temporary name: the contents are a pure function of `spec`,
    so whichever rename lands last leaves the same file. Returns generate()'s facts, kept
    next to the file as JSON."""
    directory = str(directory)
    fileio.makedirs(directory)
    stem = fileio.join(directory, f"synthetic-{spec.rows}-{spec.fingerprint()}")
    data, facts = stem + ".tsv", stem + ".json"

    def ensure_generated():
        if not (fileio.exists(data) and fileio.exists(facts)):
            progress(f"generating {spec.rows:,} synthetic rows into {data}")
            info = generate(data, spec, progress)
            fileio.write_text(facts, json.dumps(info, indent=1))

    if fileio.scheme(directory):
        ensure_generated()
    else:
        with open(stem + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            ensure_generated()
    return json.loads(fileio.read_text(facts))

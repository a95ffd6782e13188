"""The synthetic generator: deterministic, Criteo-format, Zipf ids, multi-hot lists, a
learnable hidden model whose AUC is reported; and the AUC helper itself."""

import itertools

import numpy as np

from des_tf.data import CriteoReader, CriteoSchema, MultiHotField, synthetic

SPEC = synthetic.SyntheticSpec(rows=3000, seed=5,
                               multi_hot=(synthetic.MultiHotSpec("history", 30, 50_000),))


def _generate(tmp_path, spec=SPEC, name="data.tsv"):
    return synthetic.generate(tmp_path / name, spec, progress=lambda _: None)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    _generate(tmp_path, name="a.tsv")
    _generate(tmp_path, name="b.tsv")
    _generate(tmp_path, synthetic.SyntheticSpec(rows=3000, seed=6, multi_hot=SPEC.multi_hot),
              name="c.tsv")
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.tsv", "b.tsv", "c.tsv"))
    assert a == b and a != c


def test_rows_parse_cleanly_with_the_expected_shapes(tmp_path):
    info = _generate(tmp_path)
    lines = (tmp_path / "data.tsv").read_text().splitlines()
    assert len(lines) == 3000 and all(len(line.split("\t")) == 41 for line in lines)
    reader = CriteoReader(info["path"], CriteoSchema(multi_hot=(MultiHotField("history"),)))
    lengths, labels = [], []
    for features, batch_labels in reader.dataset(1000):
        lengths += features["history"].row_lengths().numpy().tolist()
        labels += batch_labels.numpy()[:, 0].tolist()
    assert reader.malformed.report()["skipped"] == 0 and len(labels) == 3000
    assert abs(np.mean(lengths) - 30) < 1.0  # Poisson(30) list lengths
    assert abs(np.mean(labels) - info["positive_rate"]) < 1e-9
    assert 0.2 < info["positive_rate"] < 0.3


def test_ids_are_zipf_distributed(tmp_path):
    _generate(tmp_path)
    column = [line.split("\t")[16] for line in (tmp_path / "data.tsv").read_text().splitlines()]
    counts = sorted(np.unique(column, return_counts=True)[1], reverse=True)
    # C3 (10M values): a heavy head and a long tail of ids seen once.
    assert counts[0] > 50 and counts[-1] == 1 and len(counts) > 1000


def test_hidden_model_auc_is_the_reported_ceiling(tmp_path):
    info = _generate(tmp_path)
    assert 0.8 < info["ceiling_auc"] < 0.99
    assert 0.2 < info["ceiling_logloss"] < 0.6


def test_cached_generates_once(tmp_path):
    messages = []
    first = synthetic.cached(tmp_path, SPEC, progress=messages.append)
    mtime = (tmp_path / first["path"]).stat().st_mtime_ns
    second = synthetic.cached(tmp_path, SPEC, progress=messages.append)
    assert first == second and (tmp_path / first["path"]).stat().st_mtime_ns == mtime
    assert sum("generating" in m for m in messages) == 1


def test_auc_matches_pairwise_counting():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores = rng.integers(0, 8, 60).astype(float)  # many ties
    pairs = [(s_p > s_n) + 0.5 * (s_p == s_n)
             for (s_p, l_p), (s_n, l_n) in itertools.product(zip(scores, labels), repeat=2)
             if l_p == 1 and l_n == 0]
    assert abs(synthetic.auc(labels, scores) - np.mean(pairs)) < 1e-12

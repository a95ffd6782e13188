"""The Criteo reader: parsing, empty fields, malformed lines (skip / raise), gzip,
multi-hot lists, integer modes, held-out splits and per-rank slicing."""

import gzip

import numpy as np
import pytest
import tensorflow as tf

from des_tf.data import CriteoReader, CriteoSchema, MultiHotField, hash_ids
from des_tf.data import lines as lines_module

SCHEMA = CriteoSchema(num_integer=3, num_categorical=2, multi_hot=(MultiHotField("M", 3),))
GOOD = ["1\t5\t\t-3\tab12\t\t7f,0a,ff",
        "0\t0\t7\t\t01\tffffffffffffffff\t",
        "1\t\t\t\t\t\t1"]
MALFORMED = {  # line -> reason
    "0\t1\t2\t3\tab\tcd": "wrong column count",
    "2\t1\t2\t3\tab\tcd\t": "label not 0 or 1",
    "1\t1.5\t2\t3\tab\tcd\t": "non-numeric integer",
    "0\t1\t2\t3\tzz\tcd\t": "bad hex id",
    "0\t1\t2\t3\tab\t1ffffffffffffffff\t": "bad hex id",   # more than 64 bits
    "1\t1\t2\t3\tab\tcd\t7f,,0a": "bad id list",
}


def _write(tmp_path, lines, name="data.tsv"):
    path = tmp_path / name
    text = "\n".join(lines) + "\n"
    if name.endswith(".gz"):
        with gzip.open(path, "wt") as out:
            out.write(text)
    else:
        path.write_text(text)
    return str(path)


def _read(reader, batch=64, **kwargs):
    """All batches of the reader concatenated: (features dict of lists, labels)."""
    features, labels = {}, []
    for batch_features, batch_labels in reader.dataset(batch, **kwargs):
        labels += batch_labels.numpy()[:, 0].tolist()
        for name, value in batch_features.items():
            rows = value.to_list() if isinstance(value, tf.RaggedTensor) else value.numpy().tolist()
            features.setdefault(name, []).extend(rows)
    return features, labels


def _key(column, token):
    return int(hash_ids(column, tf.constant([token]))[0])


def test_good_lines_parse_with_empty_fields_and_negative_integers(tmp_path):
    features, labels = _read(CriteoReader(_write(tmp_path, GOOD), SCHEMA))
    assert labels == [1.0, 0.0, 1.0]
    # log1p(max(x, 0)); missing integers are 0.
    np.testing.assert_allclose(features["dense"], [[np.log1p(5), 0, 0], [0, np.log1p(7), 0],
                                                   [0, 0, 0]], rtol=1e-6)
    assert features["C1"] == [_key("C1", "ab12"), _key("C1", "01"), _key("C1", "")]
    assert features["C2"][1] == _key("C2", "ffffffffffffffff")
    assert features["M"] == [[_key("M", t) for t in ("7f", "0a", "ff")], [], [_key("M", "1")]]


def test_ids_are_salted_by_column():
    assert _key("C1", "ab12") != _key("C2", "ab12")
    assert _key("C1", "ab12") == _key("C1", "ab12") >= 0


@pytest.mark.parametrize("batch", [1, 4, 64])
def test_malformed_lines_are_skipped_counted_and_located(tmp_path, batch):
    lines = GOOD[:1] + list(MALFORMED) + GOOD[1:]
    reader = CriteoReader(_write(tmp_path, lines), SCHEMA)
    _, labels = _read(reader, batch)
    assert labels == [1.0, 0.0, 1.0]
    report = reader.malformed.report()
    expected = {}
    for reason in MALFORMED.values():
        expected[reason] = expected.get(reason, 0) + 1
    assert report["by_reason"] == expected
    assert report["skipped"] == len(MALFORMED) and report["lines"] == len(lines)
    assert report["first"] == (reader.paths[0], 2, "wrong column count")
    summary = reader.malformed.summary()
    assert f"skipped {len(MALFORMED)} malformed of {len(lines)} lines" in summary
    assert f"first at {reader.paths[0]}:2 (wrong column count)" in summary


def test_each_line_is_counted_once_however_often_it_is_read(tmp_path):
    lines = GOOD + list(MALFORMED) + GOOD
    reader = CriteoReader(_write(tmp_path, lines), SCHEMA)
    look_ahead = iter(reader.dataset(2))
    next(look_ahead)  # a prefetching iterator read ahead, then a full pass, twice
    _read(reader, 2)
    _read(reader, 2)
    report = reader.malformed.report()
    assert report["lines"] == len(lines) and report["skipped"] == len(MALFORMED)
    reader.malformed.reset()
    _read(reader, 2)
    assert reader.malformed.report()["skipped"] == len(MALFORMED)


def test_raise_mode_names_file_line_and_reason(tmp_path):
    path = _write(tmp_path, GOOD + ["1\t1\t2\t3\tzz\tcd\t"])
    reader = CriteoReader(path, SCHEMA, on_malformed="raise")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"malformed line {path}:4 \\(bad hex id\\)"):
        _read(reader)


def test_order_and_line_numbers_hold_across_read_chunks(tmp_path):
    """Lines are read in chunks of 4,096: order and line numbers must not notice."""
    lines = [f"{i % 2}\t{i}\t1\t1\tab\tcd\t" for i in range(5000)]
    first = _write(tmp_path, lines, "first.tsv")
    features, _ = _read(CriteoReader(first, SCHEMA), batch=1000)
    assert [round(float(np.expm1(row[0]))) for row in features["dense"]] == list(range(5000))
    second = _write(tmp_path, lines[:4499] + ["1\t1\t2\t3\tzz\tcd\t"], "second.tsv")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"malformed line {second}:4500 \\(bad hex id\\)"):
        _read(CriteoReader([first, second], SCHEMA, on_malformed="raise"), batch=1000)


def test_gzip_reads_like_plain_text(tmp_path):
    plain = _read(CriteoReader(_write(tmp_path, GOOD), SCHEMA))
    gzipped = _read(CriteoReader(_write(tmp_path, GOOD, "data.tsv.gz"), SCHEMA))
    assert plain == gzipped


@pytest.mark.parametrize("split", [None, ("train", 0.3), ("eval", 0.3)])
def test_plain_files_split_into_the_lines_textlinedataset_reads(tmp_path, monkeypatch, split):
    """DesReadLines (plain files) against TextLineDataset and the split in TF ops (gzip):
    '\r' anywhere, empty lines, a last line without '\n', chunks, a second file."""
    monkeypatch.setattr(lines_module, "CHUNK_LINES", 4)
    texts = {"a": "a\r\n\nb\r\n\r\nc\rd\n" + "".join(f"line {i}\n" for i in range(40)) + "  x\r",
             "b": "first\nsecond\n"}
    for name, text in texts.items():
        (tmp_path / f"{name}.tsv").write_text(text, newline="")
        with gzip.open(tmp_path / f"{name}.tsv.gz", "wt", newline="") as out:
            out.write(text)

    def records(suffix):
        paths = [str(tmp_path / f"{name}{suffix}") for name in texts]
        chunks = list(lines_module.numbered_lines(paths, split, batch_size=3))
        return chunks, [np.concatenate([chunk[i].numpy() for chunk in chunks]).tolist()
                        for i in range(3)]

    chunks, plain = records(".tsv")
    assert plain == records(".tsv.gz")[1]
    assert [len(chunk[2]) for chunk in chunks[:2]] == [3, 3]  # multiples of the batch
    if split is None:
        read = [line.numpy() for line in tf.data.TextLineDataset(str(tmp_path / "a.tsv"))]
        assert plain[2] == read + [b"first", b"second"]
        assert plain[1] == list(range(1, len(read) + 1)) + [1, 2]
        assert plain[0] == [0] * len(read) + [1, 1]


def test_long_id_lists_are_cut_and_counted(tmp_path):
    reader = CriteoReader(_write(tmp_path, ["1\t1\t2\t3\tab\tcd\t1,2,3,4,5"]), SCHEMA)
    features, _ = _read(reader)
    assert features["M"] == [[_key("M", t) for t in "123"]]
    assert reader.malformed.report()["truncated_id_lists"] == 1
    assert "cut 1 id lists" in reader.malformed.summary()


def test_bucketize_turns_integers_into_id_fields(tmp_path):
    schema = CriteoSchema(num_integer=3, num_categorical=2, multi_hot=(MultiHotField("M"),),
                          integer_mode="bucketize")
    features, _ = _read(CriteoReader(_write(tmp_path, GOOD), schema))
    assert "dense" not in features and schema.feature_spec().dense == ()
    # 5 -> floor(2 log2 6) = 5; missing -> -2; negative -> -1; 0 -> 0; 7 -> 6.
    assert features["I1"] == [_key("I1", "5"), _key("I1", "0"), _key("I1", "-2")]
    assert features["I2"][1] == _key("I2", "6")
    assert features["I3"][0] == _key("I3", "-1")


def test_splits_partition_the_lines(tmp_path):
    lines = [f"{i % 2}\t{i}\t1\t1\tab\tcd\t" for i in range(400)]
    path = _write(tmp_path, lines)
    train = _read(CriteoReader(path, SCHEMA, split=("train", 0.25)))[0]["dense"]
    held_out = _read(CriteoReader(path, SCHEMA, split=("eval", 0.25)))[0]["dense"]
    values = sorted(round(float(np.expm1(row[0]))) for row in train + held_out)
    assert values == list(range(400))
    assert 60 < len(held_out) < 140  # about a quarter
    again = _read(CriteoReader(path, SCHEMA, split=("eval", 0.25)))[0]["dense"]
    assert again == held_out


@pytest.mark.parametrize("size", [2, 3])
def test_rank_slices_make_up_the_global_batches(tmp_path, size):
    lines = [f"{i % 2}\t{i}\t1\t1\tab\tcd\t{i:x}" for i in range(23)]
    reader = CriteoReader(_write(tmp_path, lines), SCHEMA)
    whole = [b for b in reader.dataset(6)]
    per_rank = [list(reader.dataset(6, rank=r, size=size)) for r in range(size)]
    assert all(len(batches) == len(whole) for batches in per_rank)  # same steps everywhere
    for step, (features, labels) in enumerate(whole):
        parts = [per_rank[r][step] for r in range(size)]
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), labels)
        np.testing.assert_array_equal(np.concatenate([p[0]["C1"] for p in parts]),
                                      features["C1"])
        counts = [len(p[1]) for p in parts]
        assert max(counts) - min(counts) <= 1


def test_replicated_mode_keeps_ids_global_and_cuts_dense(tmp_path):
    lines = [f"{i % 2}\t{i}\t1\t1\tab\tcd\t{i:x}" for i in range(8)]
    reader = CriteoReader(_write(tmp_path, lines), SCHEMA)
    features, labels = next(iter(reader.dataset(8, rank=1, size=2, keep_ids_global=True)))
    assert features["C1"].shape[0] == 8 and isinstance(features["C1"], tf.RaggedTensor)
    assert features["M"].nrows() == 8
    assert labels.shape[0] == 4 and features["dense"].shape[0] == 4


def test_drop_remainder_drops_the_short_global_batch(tmp_path):
    lines = [f"1\t{i}\t1\t1\tab\tcd\t" for i in range(10)]
    reader = CriteoReader(_write(tmp_path, lines), SCHEMA)
    assert [len(b[1]) for b in reader.dataset(4, drop_remainder=True)] == [4, 4]
    assert [len(b[1]) for b in reader.dataset(4)] == [4, 4, 2]


def test_bad_arguments_are_rejected(tmp_path):
    path = _write(tmp_path, GOOD)
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        CriteoReader([str(tmp_path / "nope.tsv")], SCHEMA)
    with pytest.raises(ValueError, match="on_malformed"):
        CriteoReader(path, SCHEMA, on_malformed="ignore")
    with pytest.raises(ValueError, match="split"):
        CriteoReader(path, SCHEMA, split=("eval", 1.5))
    with pytest.raises(ValueError, match="smaller than"):
        CriteoReader(path, SCHEMA).dataset(1, rank=0, size=2)
    with pytest.raises(ValueError, match="integer_mode"):
        CriteoSchema(integer_mode="raw")
    with pytest.raises(ValueError, match="id_separator"):
        CriteoSchema(id_separator="a")


def test_hash_ids_salts_string_and_integer_ids_per_field():
    # The user guide's recipe for ids that are not int64 keys yet.
    cities = tf.ragged.constant([["paris", "oslo"], [], ["paris"]])
    item_ids = tf.constant([[3], [70000]], tf.int32)
    city_keys, item_keys = hash_ids("city", cities), hash_ids("item", item_ids)
    assert city_keys.dtype == item_keys.dtype == tf.int64
    assert city_keys[0][0] == city_keys[2][0] != city_keys[0][1]
    assert _key("city", "paris") != _key("town", "paris")
    # Integers: a bijection per field (XOR with the field's salt), no collisions.
    salt = int(hash_ids("item", tf.constant([0], tf.int64))[0])
    assert item_keys.numpy().ravel().tolist() == [3 ^ salt, 70000 ^ salt]
    with pytest.raises(TypeError, match="strings or integers"):
        hash_ids("price", tf.constant([1.5]))

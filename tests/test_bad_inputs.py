"""Bad input end to end: each case is handled as documented (counted and reported) or
rejected with a message naming the problem; none crashes without one or hangs.
(Per-reason line checks are in test_data.py, the CLI's malformed-line report in
test_cli.py, non-finite table gradients in test_dynamic_table.py.)"""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import des_tf as des
from des_tf.data import CriteoReader, CriteoSchema, MultiHotField
from tests.test_cli import ENV, REPO_ROOT

SCHEMA = CriteoSchema(num_integer=2, num_categorical=2, multi_hot=(MultiHotField("M", 4),))
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _labels(reader, batch=8):
    return [float(v) for _, labels in reader.dataset(batch) for v in labels.numpy()[:, 0]]


def test_empty_file_gives_no_batches(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    reader = CriteoReader(str(path), SCHEMA)
    assert _labels(reader) == [] and reader.malformed.report()["lines"] == 0


def test_empty_training_file_stops_the_cli_with_a_message(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("")
    run = subprocess.run([sys.executable, "-m", "des_tf.train", "--model=lr",
                          f"--train_data={path}", "--batch_size=8"], cwd=REPO_ROOT, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=180)
    assert run.returncode != 0 and "no training step can run" in run.stdout


def test_truncated_last_line_and_huge_ids(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("1\t1\t2\t7fffffffffffffff\tffffffffffffffff\t0\n"
                    "0\t-5\t2\tab\tcd\t1,2,3,4,5,6\n"
                    "1\t1\t2\tab")  # cut mid-line, no newline
    reader = CriteoReader(str(path), SCHEMA)
    features = [f for f, _ in reader.dataset(8)][0]
    assert features["C1"].shape == (2,)
    assert features["M"].row_lengths().numpy().tolist() == [1, 4]  # cut to max_length
    report = reader.malformed.report()
    assert report["by_reason"] == {"wrong column count": 1} and report["first"][1] == 3
    assert report["truncated_id_lists"] == 1


def test_extreme_int64_ids_train_in_a_des_layer():
    keys = tf.ragged.constant([[INT64_MAX, INT64_MIN], [-1, 0], [INT64_MAX]], tf.int64)
    with des.DESStrategy().scope():
        layer = des.layers.ShardedEmbedding(4, table_optimizer=des.optimizers.SGD(0.5))
    with tf.GradientTape() as tape:
        out = layer(keys, training=True)
        loss = tf.reduce_sum(out)
    tape.gradient(loss, layer.trainable_variables)
    stored = set(layer.table.export().keys.numpy().tolist())
    assert stored == {INT64_MAX, INT64_MIN, -1, 0}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_dense_features_are_rejected_by_name(bad):
    spec = des.models.FeatureSpec(sparse=("ad",), dense=("price",))
    with des.DESStrategy().scope():
        model = des.models.LR(spec)
    price = tf.constant([1.0, bad, 0.5])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\['price'\] contain NaN or Inf"):
        model({"ad": tf.constant([1, 2, 3], tf.int64), "price": price}, training=True)


def test_labels_outside_zero_one_are_skipped_not_trained_on(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("1\t1\t2\tab\tcd\t\n2\t1\t2\tab\tcd\t\n-1\t1\t2\tab\tcd\t\n0.5\t1\t2\tab\tcd\t\n")
    reader = CriteoReader(str(path), SCHEMA)
    assert _labels(reader) == [1.0]
    assert reader.malformed.report()["by_reason"] == {"label not 0 or 1": 3}


def test_keras_fit_reports_nan_features_instead_of_training_on_them():
    spec = des.models.FeatureSpec(sparse=("ad",), dense=("price",))
    with des.DESStrategy().scope():
        model = des.models.LR(spec)
        model.compile(optimizer="sgd", loss="binary_crossentropy")
    features = {"ad": tf.constant([1, 2, 3, 4], tf.int64),
                "price": tf.constant([1.0, 2.0, np.nan, 0.0])}
    dataset = tf.data.Dataset.from_tensor_slices((features, tf.ones([4, 1]))).batch(4)
    with pytest.raises(tf.errors.InvalidArgumentError, match="contain NaN or Inf"):
        model.fit(dataset, epochs=1, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())

"""The data flags of the training CLI and what they build: the schema, generated data and
the train / eval readers. bench/ps shares them, so one set of flags drives both."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from absl import flags

from des_tf import data
from des_tf.data import synthetic
from des_tf.layers.combiners import COMBINERS

FLAGS = flags.FLAGS
flags.DEFINE_list("train_data", [], "Criteo-format training files (.gz: gzip).")
flags.DEFINE_list("eval_data", [], "Held-out files; empty: hold out --eval_split of the lines.")
flags.DEFINE_float("eval_split", 0.1, "Fraction of the training lines held out (by hash of "
                   "file and line number) when --eval_data is empty.")
flags.DEFINE_integer("synthetic_rows", 0, "If > 0, train on this many generated Criteo-like "
                     "rows (cached in --data_dir) instead of --train_data.")
flags.DEFINE_integer("synthetic_seed", 0, "Seed of the generated data.")
flags.DEFINE_list("synthetic_multi_hot", [], "Generated multi-hot fields, each "
                  "name:mean_length:vocabulary, e.g. history:50:1000000.")
flags.DEFINE_string("data_dir", os.path.join("~", ".cache", "des_tf"),
                    "Where generated data is cached.")
flags.DEFINE_list("multi_hot", [], "Multi-hot columns after C1..C26 in --train_data, each "
                  "name[:max_length].")
flags.DEFINE_enum("multi_hot_combiner", "sqrtn", list(COMBINERS),
                  "How the models (embeddings and linear term) pool each multi-hot field's "
                  "ids: sqrtn (sum / sqrt(n)) keeps a list of n ids on the scale of one id, "
                  "mean shrinks it n-fold, sum grows it n-fold (one-id fields pool alike "
                  "under every combiner).")
flags.DEFINE_list("combiners", [], "Per-field exceptions to --multi_hot_combiner, each "
                  "field:combiner, e.g. history:mean,tags:sum.")
flags.DEFINE_enum("integer_mode", "log1p", data.schema.INTEGER_MODES,
                  "Integer columns: log1p dense features or bucketized id fields.")
flags.DEFINE_integer("eval_every", 0, "If > 0, evaluate on a fixed held-out slice "
                     "(--eval_batches global batches) every this many training steps and "
                     "print the held-out curve: AUC and log loss against training seconds, "
                     "evaluation time left out (time-to-accuracy).")
flags.DEFINE_integer("eval_batches", 16, "Global batches of the held-out slice --eval_every "
                     "evaluates (the first ones of the held-out lines).")
flags.DEFINE_enum("on_malformed", "skip", data.criteo.ON_MALFORMED,
                  "Malformed lines: skip and count them, or stop with the line's position.")


def multi_hot_fields() -> tuple[data.MultiHotField, ...]:
    """The schema's multi-hot columns: from --synthetic_multi_hot or --multi_hot, each
    pooled by its --combiners entry, else by --multi_hot_combiner."""
    if FLAGS.synthetic_rows > 0:
        fields = [data.MultiHotField(s.name) for s in synthetic_multi_hot()]
    else:
        fields = [_multi_hot_column(entry) for entry in FLAGS.multi_hot]
    exceptions = _combiner_exceptions(FLAGS.combiners)
    return tuple(dataclasses.replace(f, combiner=exceptions.get(f.name, FLAGS.multi_hot_combiner))
                 for f in fields)


def _multi_hot_column(entry: str) -> data.MultiHotField:
    """A --multi_hot entry, name[:max_length], as a column (its combiner set later)."""
    name, _, max_length = entry.partition(":")
    return data.MultiHotField(name, int(max_length)) if max_length else data.MultiHotField(name)


def _combiner_exceptions(entries: list[str]) -> dict[str, str]:
    """--combiners as {field: combiner}."""
    return dict(entry.split(":") for entry in entries)


def synthetic_multi_hot() -> tuple[synthetic.MultiHotSpec, ...]:
    return tuple(_synthetic_field(entry) for entry in FLAGS.synthetic_multi_hot)


def _synthetic_field(entry: str) -> synthetic.MultiHotSpec:
    name, mean_length, vocabulary = entry.split(":")
    return synthetic.MultiHotSpec(name, float(mean_length), int(vocabulary))


def schema() -> data.CriteoSchema:
    return data.CriteoSchema(multi_hot=multi_hot_fields(), integer_mode=FLAGS.integer_mode)


def synthetic_spec() -> synthetic.SyntheticSpec:
    return synthetic.SyntheticSpec(rows=FLAGS.synthetic_rows, seed=FLAGS.synthetic_seed,
                                   multi_hot=synthetic_multi_hot())


def readers(say: Callable[[str], None], on_malformed: str | None = None
            ) -> tuple[data.CriteoReader, data.CriteoReader, dict]:
    """(train reader, eval reader, facts about generated data or {}): --eval_data, or
    --eval_split of the training lines held out. Generated data is made once (`say`
    reports progress)."""
    if FLAGS.synthetic_rows > 0:
        facts = synthetic.cached(os.path.expanduser(FLAGS.data_dir), synthetic_spec(),
                                 progress=say)
        train_files, eval_files = [facts["path"]], []
    else:
        train_files, eval_files, facts = list(FLAGS.train_data), list(FLAGS.eval_data), {}
    on_malformed = on_malformed or FLAGS.on_malformed
    held_out = None if eval_files else FLAGS.eval_split
    train = data.CriteoReader(train_files, schema(), on_malformed,
                              split=held_out and ("train", held_out))
    evaluation = data.CriteoReader(eval_files or train_files, schema(), on_malformed,
                                   split=held_out and ("eval", held_out))
    return train, evaluation, facts


@flags.multi_flags_validator(
    ["train_data", "synthetic_rows"],
    message="give either --train_data files or --synthetic_rows > 0, not both")
def _has_data(values) -> bool:
    return bool(values["train_data"]) != (values["synthetic_rows"] > 0)


def _files_exist(paths: list[str]) -> bool:
    """Every entry is an existing file; otherwise absl prints one line saying which is not."""
    try:
        data.criteo.check_files(paths)
    except (OSError, ValueError) as problem:
        raise flags.ValidationError(str(problem)) from None
    return True


for _flag in ("train_data", "eval_data"):
    flags.register_validator(_flag, _files_exist)


@flags.validator("synthetic_multi_hot",
                 message="--synthetic_multi_hot entries are name:mean_length:vocabulary")
def _synthetic_fields_parse(entries: list[str]) -> bool:
    try:
        return all(_synthetic_field(entry).vocabulary > 0 for entry in entries)
    except ValueError:
        return False


def held_out_slice(reader: data.CriteoReader, global_batch: int,
                   keep_ids_global: bool = False):
    """The first --eval_batches global batches of `reader` (held-out lines), kept in
    memory: what --eval_every evaluates, the same at every point and on every rank.
    `keep_ids_global`: the ids as the "replicated_ids" input mode takes them."""
    return reader.dataset(global_batch, keep_ids_global=keep_ids_global).take(
        FLAGS.eval_batches).cache()


@flags.validator("combiners", message=f"--combiners entries are field:combiner, the combiner "
                 f"one of {COMBINERS}")
def _combiners_parse(entries: list[str]) -> bool:
    """Every --combiners entry is field:combiner with a known combiner."""
    return all(entry.count(":") == 1 and entry.partition(":")[2] in COMBINERS
               for entry in entries)


@flags.multi_flags_validator(["combiners", "synthetic_rows", "synthetic_multi_hot", "multi_hot"])
def _combiners_name_multi_hot_fields(values) -> bool:
    """Every --combiners field is a multi-hot field of the data (one-id fields pool alike
    under every combiner, so naming one is a mistake)."""
    columns = (values["synthetic_multi_hot"] if values["synthetic_rows"] > 0
               else values["multi_hot"])
    names = {entry.partition(":")[0] for entry in columns}
    unknown = sorted({entry.partition(":")[0] for entry in values["combiners"]} - names)
    if unknown:
        raise flags.ValidationError(f"--combiners names {unknown}, which are not multi-hot "
                                    f"fields of the data (those are {sorted(names)})")
    return True

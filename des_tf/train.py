"""Trains a CTR model with DES on Criteo-format or generated data.

  horovodrun -np 2 -H localhost:2 --gloo python -m des_tf.train \\
      --flagfile=configs/deepfm_criteo.flags --train_data=day_0.gz

Rank 0 prints progress every --log_every steps and, at the end, one line
`DES_TF_SUMMARY {json}`: eval AUC and log loss, samples/s, bytes communicated per step
and rank, ranks, wall time (see README, "The main job").
"""

from __future__ import annotations

import sys
import time
import warnings

import keras
import tensorflow as tf
from absl import app

from des_tf import checkpoint, comm
from des_tf import tables as tables_lib
from des_tf.cli import data_flags, reference, report
from des_tf.cli import flags as cli_flags
from des_tf.cli.held_out import HeldOutCurve
from des_tf.cli.profile import StepProfile, format_profile
from des_tf.cli.progress import TrainingProgress
from des_tf.comm.cost import InputMode
from des_tf.data import CriteoReader
from des_tf.layers import plan_report, plan_tables
from des_tf.layers.model_planning import des_layers
from des_tf.strategy import DESStrategy

FLAGS = cli_flags.FLAGS


def _say(message: str) -> None:
    if comm.rank() == 0:
        print(message, flush=True)


def _per_rank(strategy: DESStrategy, reader: CriteoReader, global_batch: int,
              rank: int, size: int, training: bool) -> tf.data.Dataset:
    """This rank's slice of every global batch; for training, every pass (--epochs) or an
    endless stream (--steps) of whole global batches."""
    dataset = reader.dataset(global_batch, rank, size,
                             keep_ids_global=strategy.input_mode == InputMode.REPLICATED,
                             drop_remainder=training)
    if not training:
        return dataset
    return dataset.repeat() if FLAGS.steps else dataset.repeat(FLAGS.epochs)


def _distributed(strategy: DESStrategy, reader: CriteoReader, global_batch: int,
                 training: bool, skip: int = 0):
    """The reader's batches, each rank reading only its slice of every global batch;
    `skip` leaves out the global batches a restored checkpoint has trained on."""
    return strategy.distribute_datasets_from_function(
        lambda context: _per_rank(strategy, reader, global_batch, context.input_pipeline_id,
                                  context.num_input_pipelines, training).skip(skip))


def _first_local_batch(strategy: DESStrategy, reader: CriteoReader, global_batch: int):
    """This rank's part of the first global batch, or a ValueError naming the files."""
    for features, _ in _per_rank(strategy, reader, global_batch, strategy.rank,
                                 strategy.size, training=True).take(1):
        return features
    raise ValueError(f"no training step can run: {reader.paths} hold fewer than one global "
                     f"batch ({global_batch} lines) of well-formed lines")


def _build_and_restore(strategy: DESStrategy, model, first_batch) -> int:
    """Creates the model's weights on this rank's first batch, then restores the newest
    checkpoint in --checkpoint_dir; returns its step (0 without one)."""
    with strategy.scope():
        model(first_batch, training=False)
    step = checkpoint.restore_latest(model, FLAGS.checkpoint_dir) or 0
    if step:
        _say(f"resumed from the checkpoint of step {step} in {FLAGS.checkpoint_dir}")
    return step


def _train(strategy: DESStrategy, model, reader: CriteoReader, global_batch: int,
           first_step: int, held_out: HeldOutCurve | None
           ) -> tuple[TrainingProgress, comm.CommBytesLogger, StepProfile | None]:
    """Fits from `first_step` to --steps (or to the end of --epochs passes)."""
    progress = TrainingProgress(global_batch, FLAGS.log_every, FLAGS.steps or None, first_step)
    comm_bytes = comm.CommBytesLogger(verbose=False)
    profile = None
    if FLAGS.profile_steps:
        profile = StepProfile(cli_flags.PROFILE_FROM_STEP, FLAGS.profile_steps,
                              f"{FLAGS.profile_dir}/rank{strategy.rank}",
                              [layer.name for layer in des_layers(model)])
    callbacks = [progress, comm_bytes, *([profile] if profile else []),
                 *([held_out] if held_out else [])]
    if FLAGS.checkpoint_dir:
        callbacks.append(checkpoint.CheckpointCallback(
            FLAGS.checkpoint_dir, every_n_steps=FLAGS.checkpoint_every or None,
            keep=FLAGS.keep_checkpoints))
    remaining = FLAGS.steps - first_step if FLAGS.steps else None
    if remaining is not None and remaining <= 0:
        _say(f"the checkpoint already reached --steps={FLAGS.steps}: nothing to train")
        return progress, comm_bytes, None
    # All --epochs passes make one Keras epoch, so a resumed run can skip into any pass.
    model.fit(_distributed(strategy, reader, global_batch, training=True, skip=first_step),
              epochs=1, steps_per_epoch=remaining, shuffle=False, verbose=0,
              callbacks=callbacks)
    return progress, comm_bytes, profile


def _report_profile(profile: StepProfile) -> dict:
    """Every rank's profile, printed by rank 0 as one table; returned for the summary."""
    everyone = comm.gather_json({"parts": profile.parts, "wall_ms": round(profile.wall_ms, 2)})
    if not all(entry["parts"] for entry in everyone):
        _say("no profile: training ended before the profiled steps")
        return {}
    _say(f"profile of steps {profile.first + 1}-{profile.last + 1} of this run "
         f"(des_tf.cli.profile):\n"
         + format_profile([e["parts"] for e in everyone], [e["wall_ms"] for e in everyone]))
    return {"ranks": everyone}


def _bytes_per_step(per_step: dict[str, dict[str, float]]) -> dict:
    """This rank's average bytes per step, averaged over ranks."""
    kinds = sorted(per_step["sent"])
    values = [per_step[d][k] for d in ("sent", "received") for k in kinds]
    mean = comm.allreduce(tf.constant(values, tf.float64), average=True).numpy()
    sent, received = mean[:len(kinds)], mean[len(kinds):]
    return {"sent": round(float(sent.sum())), "received": round(float(received.sum())),
            "sent_by_kind": {k: round(float(v)) for k, v in zip(kinds, sent) if v}}


def main(argv: list[str]) -> None:
    del argv
    # Readers have no known length: Keras warns at the end of every pass, harmlessly.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    started = time.perf_counter()
    if FLAGS.steps and FLAGS.profile_steps > FLAGS.steps - cli_flags.PROFILE_FROM_STEP:
        raise app.UsageError(f"--profile_steps={FLAGS.profile_steps} needs --steps of at least "
                             f"{cli_flags.PROFILE_FROM_STEP + FLAGS.profile_steps}")
    strategy = DESStrategy(input_mode=FLAGS.input_mode, comm_dtype=FLAGS.comm_dtype)
    comm.assert_same_config(cli_flags.job_config(), "command-line flags")
    keras.utils.set_random_seed(FLAGS.seed)
    train_reader, eval_reader, facts = data_flags.readers(_say)
    global_batch = FLAGS.batch_size * strategy.size
    _say(f"training {FLAGS.model} on {strategy.size} rank(s), global batch {global_batch}, "
         f"data {train_reader.paths}")
    with strategy.scope():
        model = cli_flags.model(data_flags.schema().feature_spec())
        model.compile(optimizer=cli_flags.dense_optimizer(), loss="binary_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc")])
    # This rank's part of the first global batch (a clear error if there is none): it
    # plans the auto layers, builds the model before a restore, and types the export.
    first_batch = _first_local_batch(strategy, train_reader, global_batch)
    with comm.naming_lost_ranks():  # a collective failing for a dead rank names it
        # plan="auto" layers choose their plan from the first batch, before Keras traces.
        plan_tables(model, first_batch)
        first_step = (_build_and_restore(strategy, model, first_batch)
                      if FLAGS.checkpoint_dir else 0)
        held_out = (HeldOutCurve(FLAGS.eval_every, data_flags.held_out_slice(
            eval_reader, global_batch, strategy.input_mode == InputMode.REPLICATED), _say)
            if FLAGS.eval_every else None)
        progress, comm_bytes, profile = _train(strategy, model, train_reader, global_batch,
                                               first_step, held_out)
        evaluation = model.evaluate(_distributed(strategy, eval_reader, global_batch,
                                                 training=False), verbose=0, return_dict=True)
    for name, reader in (("train", train_reader), ("eval", eval_reader)):
        warning = reader.malformed.summary()
        if warning:
            print(f"rank {strategy.rank}: {name} data: {warning}", flush=True)
    tables = tables_lib.table_report(model)
    _say(tables_lib.format_table_report(tables))
    if FLAGS.export_dir:
        checkpoint.export_for_serving(model, FLAGS.export_dir, first_batch)
        _say(f"exported a single-process serving model to {FLAGS.export_dir}")
    summary = {
        "model": FLAGS.model, "ranks": strategy.size, "global_batch": global_batch,
        "train_steps": first_step + progress.steps,
        "train_samples": progress.steps * global_batch,
        "samples_per_s": round(progress.samples_per_second(), 1),
        "eval_auc": round(float(evaluation["auc"]), 6),
        "eval_logloss": round(float(evaluation["loss"]), 6),
        "bytes_per_step": _bytes_per_step(comm_bytes.per_step()),
        "table_rows": sum(sum(t["rows"]) for t in tables),
        "table_bytes_per_rank": [sum(t["bytes"][r] for t in tables)
                                 for r in range(strategy.size)],
        "comm_plans": {name: entry["plan"] for name, entry in plan_report(model).items()},
    }
    if profile is not None:
        summary["profile"] = _report_profile(profile)
    if held_out is not None:
        summary["held_out_curve"] = held_out.curve
    if facts:
        summary["data_ceiling_auc"] = round(facts["ceiling_auc"], 6)
    if strategy.rank != 0:
        return
    if FLAGS.plot and progress.curve:
        report.plot_curve(progress.curve, FLAGS.plot, f"{FLAGS.model}, {strategy.size} "
                          f"rank(s), global batch {global_batch}", summary["eval_auc"])
        print(f"wrote {FLAGS.plot}", flush=True)
    if FLAGS.single_process_reference:
        print("training the single-process reference on the same global batches ...",
              flush=True)
        single = reference.train_single_process(sys.argv[1:], global_batch)
        summary["single_process"] = {k: single[k] for k in ("eval_auc", "eval_logloss")}
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    report.print_summary(summary, FLAGS.metrics_json)


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    run()

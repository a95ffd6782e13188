"""The job's outputs: the final summary (one JSON line) and the training-curve plot, on
any TensorFlow file system (des_tf.fileio)."""

from __future__ import annotations

import io
import json

import numpy as np

from des_tf import fileio


def print_summary(summary: dict, path: str = "") -> None:
    """Prints `summary` as one JSON line (prefixed so logs can grep it) and writes it to
    `path` if given."""
    line = json.dumps(summary, sort_keys=True)
    print(f"DES_TF_SUMMARY {line}", flush=True)
    if path:
        fileio.write_text(path, line + "\n")


def plot_curve(curve: list[tuple[int, float, float]], path: str, title: str,
               eval_auc: float | None = None) -> None:
    """A PNG of running training loss and AUC against step (and the eval AUC as a line)."""
    import matplotlib  # imported here: only the rank that plots needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, losses, aucs = (np.array(column) for column in zip(*curve))
    figure, (loss_axis, auc_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_axis.plot(steps, losses, color="tab:red")
    loss_axis.set(xlabel="step", ylabel="training log loss (running mean)")
    auc_axis.plot(steps, aucs, color="tab:blue", label="training AUC (running)")
    if eval_auc is not None:
        auc_axis.axhline(eval_auc, color="tab:green", linestyle="--",
                         label=f"eval AUC {eval_auc:.4f}")
    auc_axis.set(xlabel="step", ylabel="AUC")
    auc_axis.legend(loc="lower right")
    for axis in (loss_axis, auc_axis):
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    fileio.write_bytes(path, image.getvalue())

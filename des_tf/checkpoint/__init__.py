"""Checkpoints that reshard and export for serving (README: "Checkpoints, restarts and serving").

- `save` / `restore` / `restore_latest` / `latest`: sharded checkpoints; each rank writes
  its own table rows, rank 0 the dense state and a manifest with checksums; a checkpoint
  from N ranks restores on any M ranks.
- `CheckpointCallback`: saves from Keras `fit` every K steps and every epoch, resumes.
- `export_for_serving` / `load_for_serving`: a single-process SavedModel in core
  TensorFlow ops (stock TF Serving loads it), its signature's inputs named after the features.
"""

from des_tf.checkpoint.callback import CheckpointCallback
from des_tf.checkpoint.errors import CheckpointError
from des_tf.checkpoint.export import export_for_serving, load_for_serving
from des_tf.checkpoint.manifest import model_config
from des_tf.checkpoint.sharded import latest, restore, restore_latest, save

__all__ = ["CheckpointCallback", "CheckpointError", "export_for_serving", "latest",
           "load_for_serving", "model_config", "restore", "restore_latest", "save"]

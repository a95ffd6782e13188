"""DES substitution layers: each runs its weight-rich operator where the weights live
and sums small partial results across ranks (docs/design.md section 1)."""

from des_tf.layers.base import DESLayer, resolve_plan
from des_tf.layers.fm_interaction import FMInteraction
from des_tf.layers.model_planning import plan_report, plan_tables
from des_tf.layers.sharded_embedding import ShardedEmbedding
from des_tf.layers.sparse_linear import SparseLinear

__all__ = ["DESLayer", "FMInteraction", "ShardedEmbedding", "SparseLinear", "plan_report",
           "plan_tables", "resolve_plan"]

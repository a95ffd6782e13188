"""Models: CTR architectures built from des_tf.layers (sparse, DES) and Keras (dense)."""

from des_tf.models.ctr import DLRM, LR, CTRModel, DCNv2, DeepFM, WideDeep
from des_tf.models.features import FeatureSpec

__all__ = ["CTRModel", "DCNv2", "DLRM", "DeepFM", "FeatureSpec", "LR", "WideDeep"]

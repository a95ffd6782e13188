"""Input data: the Criteo TSV reader, its schema, and a synthetic Criteo-like generator."""

from des_tf.data.criteo import REASONS, CriteoReader, MalformedLines, hash_ids
from des_tf.data import synthetic
from des_tf.data.schema import CriteoSchema, MultiHotField

__all__ = ["CriteoReader", "CriteoSchema", "MalformedLines", "MultiHotField", "REASONS",
           "hash_ids", "synthetic"]

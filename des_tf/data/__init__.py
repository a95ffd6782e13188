"""Input data: the Criteo TSV reader, its schema, and a synthetic Criteo-like generator."""

from des_tf.data import synthetic
from des_tf.data.criteo import CriteoReader, hash_ids
from des_tf.data.malformed import REASONS, MalformedLines
from des_tf.data.schema import CriteoSchema, MultiHotField

__all__ = ["CriteoReader", "CriteoSchema", "MalformedLines", "MultiHotField", "REASONS",
           "hash_ids", "synthetic"]

"""Tables: rank-local dynamic embedding storage (hash-table resource ops) for DES layers."""

from des_tf.tables.dynamic_table import INITIALIZERS, DynamicTable, TableRows

__all__ = ["INITIALIZERS", "DynamicTable", "TableRows"]

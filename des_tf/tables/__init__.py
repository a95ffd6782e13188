"""Tables: rank-local dynamic embedding storage (hash-table resource ops) for DES layers."""

from des_tf.tables.dynamic_table import INITIALIZERS, DynamicTable, TableRows
from des_tf.tables.model_tables import format_table_report, model_tables, table_report

__all__ = ["INITIALIZERS", "DynamicTable", "TableRows", "format_table_report", "model_tables",
           "table_report"]

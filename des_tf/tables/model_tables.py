"""The DynamicTables of a Keras model, under stable names, and their size per rank."""

from __future__ import annotations

import keras
import tensorflow as tf

from des_tf import comm
from des_tf.tables.dynamic_table import DynamicTable


def model_tables(model: keras.Model) -> dict[str, tuple[keras.layers.Layer, DynamicTable]]:
    """{name: (layer, table)} for every layer of `model` holding a `table`, in layer order.

    Names are "table_<i>_<LayerClass>" (i counts table layers depth-first), so the same
    model code names its tables alike in every process, whatever Keras' name counters say.
    """
    found = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        table = getattr(layer, "table", None)
        if isinstance(table, DynamicTable):
            found[f"table_{len(found)}_{type(layer).__name__}"] = (layer, table)
    return found


def table_report(model: keras.Model) -> list[dict]:
    """Rows and bytes of every table on every rank (a collective: call it on all ranks).

    Returns one dict per table: {"table", "layer", "rows": [per rank], "bytes": [per
    rank]}; `format_table_report` turns it into the lines the CLI prints.
    """
    tables = model_tables(model)
    if not tables:
        return []
    local = tf.stack([tf.stack([table.size(), table.memory_bytes()])
                      for _, table in tables.values()])
    everyone = comm.allgather(local[None]).numpy()  # [ranks, tables, 2]
    return [{"table": name, "layer": layer.name, "rows": everyone[:, i, 0].tolist(),
             "bytes": everyone[:, i, 1].tolist()}
            for i, (name, (layer, _)) in enumerate(tables.items())]


def format_table_report(report: list[dict]) -> str:
    """One line per table and rank: rows and MiB, plus the table's total."""
    lines = []
    for entry in report:
        for rank, (rows, size) in enumerate(zip(entry["rows"], entry["bytes"])):
            lines.append(f"{entry['table']} ({entry['layer']}) rank {rank}: {rows} rows, "
                         f"{size / 2**20:.2f} MiB")
        lines.append(f"{entry['table']} ({entry['layer']}) total: {sum(entry['rows'])} rows, "
                     f"{sum(entry['bytes']) / 2**20:.2f} MiB")
    return "\n".join(lines)

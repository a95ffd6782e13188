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

    Returns one dict per table: {"table", "layer", "dim", "rows": [per rank], "bytes":
    [per rank]}; bytes count rows, optimizer slots and per-row metadata.
    `format_table_report` turns it into text.
    """
    tables = model_tables(model)
    if not tables:
        return []
    local = tf.stack([tf.stack([table.size(), table.memory_bytes()])
                      for _, table in tables.values()])
    everyone = comm.allgather(local[None]).numpy()  # [ranks, tables, 2]
    return [{"table": name, "layer": layer.name, "dim": layer.dim,
             "rows": everyone[:, i, 0].tolist(), "bytes": everyone[:, i, 1].tolist()}
            for i, (name, (layer, _)) in enumerate(tables.items())]


def format_table_report(report: list[dict]) -> str:
    """A line per table (rows and bytes over all ranks, then per rank) and the total."""
    if not report:
        return "DES tables: none"
    lines = [f"DES tables ({len(report[0]['rows'])} rank(s)):"]
    for entry in report:
        per_rank = ", ".join(f"{rows:,} rows / {_readable(size)}"
                             for rows, size in zip(entry["rows"], entry["bytes"]))
        lines.append(f"  {entry['table']} ({entry['layer']}, dim {entry['dim']}): "
                     f"{sum(entry['rows']):,} rows, {_readable(sum(entry['bytes']))} "
                     f"[per rank: {per_rank}]")
    rows = sum(sum(entry["rows"]) for entry in report)
    size = sum(sum(entry["bytes"]) for entry in report)
    lines.append(f"  all tables: {rows:,} rows, {_readable(size)}")
    return "\n".join(lines)


def _readable(size: float) -> str:
    if size < 1024:
        return f"{int(size)} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.2f} {unit}"

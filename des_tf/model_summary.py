"""`des_tf.summary(model)`: Keras' model summary plus the rows and bytes of every table.

Keras computes its summary's sizes from `model.weights` alone and offers no hook to add
storage it does not own, so a DES layer's table shows in `model.summary()` only as its
"Param #" (this rank's rows x dim). This function is the explicit opt-in for the rest:
Keras' own summary unchanged, then a line per table with its dim, rows and bytes (rows,
optimizer slots and per-row metadata) over all ranks and per rank, and the total.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from des_tf import comm
from des_tf.tables.model_tables import format_table_report, table_report


def summary(model: keras.Model, print_fn: Callable[[str], None] | None = print,
            **keras_summary_arguments) -> str:
    """Keras' `model.summary(...)` followed by the table section; returns the text.

    A collective (every rank gathers every rank's table sizes): call it on all ranks.
    Only rank 0 prints, with `print_fn` (None: print nothing). Extra keyword arguments go
    to Keras' `summary` (`line_length`, `expand_nested`, `show_trainable`, ...).
    """
    keras_lines: list[str] = []
    model.summary(print_fn=lambda text, **_: keras_lines.append(text),
                  **keras_summary_arguments)
    text = "\n".join(keras_lines + [format_table_report(table_report(model))])
    if print_fn is not None and comm.rank() == 0:
        print_fn(text)
    return text

"""Wire formats of the float payloads ranks exchange: DESStrategy(comm_dtype=...).

"float32" sends values as they are (exact). "bfloat16" and "float16" halve the bytes:
each value is rounded to the 16-bit type before it leaves and widened back to float32 on
arrival, where any sum is taken (so rounding happens once per hop, never in the sum).
bfloat16 keeps float32's range with 8 bits of mantissa; float16 keeps 11 bits within
+-65504, and a finite value beyond that is an error naming it rather than an infinity
(infinities and NaNs pass as they are, for loss scaling to skip the step). On the
wire the 16-bit values travel as int16 words: Horovod has no bfloat16 collectives.
"""

from __future__ import annotations

import tensorflow as tf

from des_tf.comm.cost import COMM_DTYPE_BYTES, COMM_DTYPES
from des_tf.comm.cost import EXACT_COMM_DTYPE as FLOAT32

FLOAT16_MAX = 65504.0


def check(comm_dtype: str) -> str:
    """`comm_dtype` if it is one of COMM_DTYPES, else a ValueError."""
    if comm_dtype not in COMM_DTYPES:
        raise ValueError(f"comm_dtype must be one of {COMM_DTYPES}, got {comm_dtype!r}")
    return comm_dtype


def value_bytes(comm_dtype: str) -> int:
    """Bytes one float takes on the wire."""
    return COMM_DTYPE_BYTES[check(comm_dtype)]


def encode(x: tf.Tensor, comm_dtype: str) -> tf.Tensor:
    """float32 `x` as it travels: itself for float32, else int16 words of its values
    rounded to `comm_dtype`."""
    if check(comm_dtype) == FLOAT32:
        return x
    if x.dtype != tf.float32:
        raise TypeError(f"comm_dtype={comm_dtype} applies to float32 payloads, got {x.dtype}")
    if comm_dtype == "float16":
        magnitudes = tf.abs(x)
        largest = tf.reduce_max(tf.where(tf.math.is_finite(magnitudes), magnitudes, 0.0))
        tf.debugging.Assert(largest <= FLOAT16_MAX, [
            "comm_dtype=float16: a finite value sent to other ranks exceeds float16's range "
            "(+-65504); use comm_dtype='bfloat16' (float32's range). Largest:", largest])
    return tf.bitcast(tf.cast(x, comm_dtype), tf.int16)


def decode(words: tf.Tensor, comm_dtype: str) -> tf.Tensor:
    """float32 values of what `encode` sent."""
    if check(comm_dtype) == FLOAT32:
        return words
    return tf.cast(tf.bitcast(words, comm_dtype), tf.float32)

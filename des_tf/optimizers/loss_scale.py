"""LossScaleOptimizer: Keras' dynamic loss scaling (mixed_float16) extended to DES tables.

Keras scales the loss, then, inside `optimizer.apply`, unscales the gradients and skips
the whole step when any of them is not finite. DES tables update in the backward pass,
before `apply` runs, so plain loss scaling would feed them scaled gradients and could
not skip them. While this optimizer's scaled loss is differentiated, DES layers hand
their table updates to it instead (`deferred_updates`); `apply` runs them with the
gradients unscaled, only when the step is finite, the same decision as for the dense
weights. The decision is also made on every rank together: Keras checks each rank's
gradients before they are all-reduced, so one rank's overflow would split the ranks.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from des_tf import comm

# A deferred table update: called with the loss scale, returns a float32 zero that
# depends on the update by data.
DeferredUpdate = Callable[[tf.Tensor], tf.Tensor]

# The table updates of the scaled loss being differentiated, from `scale_loss` until
# `apply` takes them; None outside (tables then update in the backward pass).
_deferred: list[DeferredUpdate] | None = None


def deferred_updates() -> list[DeferredUpdate] | None:
    """Where a DES backward appends its table update while a loss scaled by a
    des_tf LossScaleOptimizer is differentiated; None when tables update at once."""
    return _deferred


@keras.saving.register_keras_serializable(package="des_tf")
class LossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """keras.optimizers.LossScaleOptimizer that also unscales, and skips on overflow, the
    in-table updates of DES layers: `mixed_float16` training with DES layers needs it.

        model.compile(optimizer=des_tf.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))

    Keras wraps the optimizer of a mixed_float16 model in its own LossScaleOptimizer
    unless it already is one; DES layers refuse to train under that one (see module).
    Arguments as keras.optimizers.LossScaleOptimizer.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._step_finite = None  # set within `apply`: its finiteness, decided once

    def scale_loss(self, loss):
        """The scaled loss; DES table updates are deferred to `apply` from here."""
        global _deferred
        _deferred = []
        return super().scale_loss(loss)

    def check_finite(self, grads) -> tf.Tensor:
        """Whether every gradient is finite on every rank."""
        if self._step_finite is not None:
            return self._step_finite
        finite = super().check_finite(grads)
        overflowed = comm.allreduce(tf.cast(tf.logical_not(finite), tf.float32)[None])[0]
        return tf.equal(overflowed, 0.0)

    def apply(self, grads, trainable_variables=None):
        """Applies the deferred table updates, unscaled, if the step is finite on every
        rank, then Keras' loss-scaled apply of the dense gradients (same decision)."""
        global _deferred
        updates, _deferred = _deferred or [], None
        if not updates:
            return super().apply(grads, trainable_variables)
        scale = tf.convert_to_tensor(self.dynamic_scale if self.built else self.initial_scale,
                                     tf.float32)
        self._step_finite = self.check_finite(grads)
        try:
            tf.cond(self._step_finite, lambda: tf.add_n([update(scale) for update in updates]),
                    lambda: tf.constant(0.0))
            return super().apply(grads, trainable_variables)
        finally:
            self._step_finite = None

"""DESStrategy: a tf.distribute.Strategy with one replica per Horovod process.

Inside `strategy.scope()`, every variable starts from rank 0's initial value; Keras 3
sees `num_replicas_in_sync == size`, scales each rank's loss by 1/size and sums dense
gradients through the replica context's all-reduce, which this strategy implements with
a Horovod allreduce: plain `model.compile()` / `model.fit()` then train dense weights
synchronously. (The 1/size scaling makes this exactly the global-batch mean when the
ranks hold equal batches, as DESStrategy's slicing gives whenever the global batch is a
multiple of the number of ranks.) The DES layers (des_tf.layers) read the strategy's
rank, size, input mode and sharding seed.

Metrics, as tf.distribute strategies do them: Keras creates metric variables with
on-read synchronization (sum or mean aggregation); here they become SyncOnReadVariables
whose local value is updated in the step and whose read outside the step (cross-replica
context: the logs at each epoch's end and at the end of `evaluate`, an eager
`model.get_metrics_result()`) sums them over all ranks. Epoch and evaluate results are
therefore those of all ranks' samples (AUC from summed confusion counts, equal to one
process on the same data), while the logs of a single step are this rank's. Reading a
metric eagerly is a collective: every rank must do it at the same point. On ranks other
than 0 the strategy turns Keras' interactive logging off (`keras.config.
disable_interactive_logging()`), so progress bars and summaries print on rank 0 only.
Importing des_tf changes nothing in Keras.

Supported: `scope`, `run`, `reduce`, `experimental_distribute_dataset` /
`distribute_dataset` (each rank takes its slice of every global batch),
`distribute_datasets_from_function` (each rank builds its own slices), replica-context
`all_reduce` (SUM, MEAN). Not supported: multiple devices per process, parameter
servers, TPU features, `gather` across ranks (use des_tf.comm.allgather).
"""

from __future__ import annotations

import os
import warnings

import keras
import tensorflow as tf
from tensorflow.python.distribute import (
    distribute_lib,
    distribute_utils,
    input_util,
    one_device_strategy,
)

from des_tf import comm, sharding
from des_tf.comm import wire
from des_tf.comm.cost import InputMode, parse_input_mode  # TF-free, with the cost model


def _reduced_on_read(variable_kwargs: dict) -> bool:
    return (variable_kwargs.get("synchronization") == tf.VariableSynchronization.ON_READ
            and variable_kwargs.get("aggregation") in (tf.VariableAggregation.SUM,
                                                       tf.VariableAggregation.MEAN))


class _HorovodExtended(one_device_strategy.OneDeviceExtended):
    """OneDeviceExtended whose cross-replica reductions are Horovod collectives."""

    @property
    def _num_replicas_in_sync(self) -> int:
        return comm.size()

    def _create_variable(self, next_creator, **kwargs):
        """Every variable starts from rank 0's initial value, so dense weights agree on all
        ranks whatever their initialisers draw (variables are created in the same order
        on every rank, as the same model code runs everywhere). A variable synchronized on
        read with sum or mean aggregation (Keras' metric states) becomes a
        SyncOnReadVariable: rank-local where the step updates it, summed (or averaged)
        over ranks where it is read outside the step (`_reduce_to`)."""
        if comm.size() > 1 and _reduced_on_read(kwargs):
            def create_local_copy(**local_kwargs):
                with tf.device(self._device):
                    return [next_creator(**local_kwargs)]

            return distribute_utils.create_mirrored_variable(
                self._container_strategy(), create_local_copy,
                distribute_utils.VARIABLE_CLASS_MAPPING,
                distribute_utils.VARIABLE_POLICY_MAPPING, **kwargs)
        if comm.size() > 1:
            initial = kwargs["initial_value"]
            kwargs["initial_value"] = lambda: comm.broadcast(initial() if callable(initial)
                                                             else initial)
        return super()._create_variable(next_creator, **kwargs)

    def _use_merge_call(self) -> bool:
        return False  # all-reduce straight from the replica context

    def _replica_ctx_all_reduce(self, reduce_op, value, options=None):
        """Keras' dense-gradient all-reduce: the float32 tensors travel as one
        (_allreduce_as_one), others each as they are."""
        del options
        average = reduce_op == tf.distribute.ReduceOp.MEAN
        values = [tf.convert_to_tensor(v) for v in tf.nest.flatten(value)]
        floats = iter(self._allreduce_as_one(
            [v for v in values if v.dtype == tf.float32], average))
        reduced = [next(floats) if v.dtype == tf.float32
                   else comm.allreduce(v, average=average) for v in values]
        return tf.nest.pack_sequence_as(value, reduced)

    def _allreduce_as_one(self, tensors: list[tf.Tensor], average: bool) -> list[tf.Tensor]:
        """`tensors` summed (or averaged) over the ranks in one des_tf.comm.allreduce of
        their concatenation, in the strategy's comm_dtype: one collective instead of
        one per tensor (one round on 2 ranks over the mesh)."""
        if not tensors:
            return []
        summed = comm.allreduce(tf.concat([tf.reshape(t, [-1]) for t in tensors], 0),
                                average=average,
                                comm_dtype=self._container_strategy().comm_dtype)
        pieces = tf.split(summed, tf.stack([tf.size(t) for t in tensors]))
        return [tf.reshape(piece, tf.shape(t)) for piece, t in zip(pieces, tensors)]

    def _reduce_to(self, reduce_op, value, destinations, options):
        del destinations, options
        if isinstance(value, tf.distribute.DistributedValues):
            value = value.values[0]
        average = reduce_op == tf.distribute.ReduceOp.MEAN
        return comm.allreduce(tf.convert_to_tensor(value), average=average)

    def _experimental_distribute_dataset(self, dataset, options):
        return super()._experimental_distribute_dataset(
            self._container_strategy().slice_dataset(dataset), options)

    def _distribute_datasets_from_function(self, dataset_fn, options):
        """`dataset_fn` builds this rank's own dataset: it gets an InputContext with one
        input pipeline per rank (the des_tf.data readers parse only their rank's lines)."""
        context = distribute_lib.InputContext(num_input_pipelines=comm.size(),
                                              input_pipeline_id=comm.rank(),
                                              num_replicas_in_sync=comm.size())
        return input_util.get_distributed_datasets_from_function(
            dataset_fn, self._input_workers_with_options(options), [context],
            self._container_strategy(), options=options)


class DESStrategy(distribute_lib.Strategy):
    """Synchronous DES training, one replica per process launched by `horovodrun`.

    Args:
      input_mode: how ids reach their owners (docs/design.md section 2): "allgather_ids"
        (every rank receives all ids), "alltoall_ids" (each id only to its owner) or
        "replicated_ids" (every rank reads the whole global batch of sparse features; no
        id moves). The former names "allgather", "alltoall", "replicated" are deprecated.
      sharding_seed: seed of `owner(k) = mix64(k ^ seed) mod size`; same on every rank.
      collective_timeout_s: seconds of silence after which a rank counts as lost (the
        mesh's heartbeat limit and Gloo's timeout, HOROVOD_GLOO_TIMEOUT_SECONDS); must be
        set before Horovod starts.
      expected_size: if given, the number of ranks this job must run on: a mismatch
        (e.g. launched without horovodrun) raises with the launch command to use.
      global_step_metrics: deprecated, ignored: metrics are summed over ranks where read
        outside the step (see the module docstring); step logs are this rank's.
      keras_file_max_bytes: the most table bytes (rows, optimizer slots, metadata: all
        ranks' together) one DES layer may put in a Keras file (`model.save`,
        `save_weights`, their callbacks), which gathers them on every rank; a larger
        table raises before any of its rows is gathered (use des_tf.checkpoint, which
        writes one file per rank, for those).
      comm_dtype: the wire format of the floats ranks exchange in training and inference:
        the DES layers' partials and their gradients, and float32 tensors of the replica
        context's all-reduce, through which Keras sums the dense gradients
        (des_tf.comm.wire): "float32" (default, exact: N ranks equal one process),
        "bfloat16" or "float16" (half the bytes, rounded once per hop, summed in float32;
        a finite float16 value out of range is an error). Ids, metrics and checkpoints
        always travel exactly; tables, optimizers and the model stay float32.
    """

    def __init__(
        self,
        input_mode: str = InputMode.ALLGATHER,
        sharding_seed: int = 0,
        collective_timeout_s: int | None = None,
        expected_size: int | None = None,
        global_step_metrics: bool | None = None,
        keras_file_max_bytes: int = 2**31,
        comm_dtype: str = wire.FLOAT32,
    ):
        input_mode = parse_input_mode(input_mode)
        self.comm_dtype = wire.check(comm_dtype)
        if global_step_metrics is not None:
            warnings.warn("DESStrategy(global_step_metrics=...) is deprecated and ignored: "
                          "metrics are summed over ranks where read outside the step (epoch "
                          "ends, evaluate, model.get_metrics_result()); step logs are this "
                          "rank's", DeprecationWarning, stacklevel=2)
        if collective_timeout_s is not None:
            if comm.runtime.init.cache_info().currsize:
                raise RuntimeError("collective_timeout_s must be set before Horovod starts: "
                                   "create the DESStrategy before any des_tf.comm call")
            os.environ["HOROVOD_GLOO_TIMEOUT_SECONDS"] = str(int(collective_timeout_s))
        comm.init()
        comm.counters()  # created here, outside any scope, before variables get broadcast
        if comm.size() > 1:
            comm.liveness.peers()  # recorded now, so a lost rank can be named later
            if comm.rank() != 0:
                keras.config.disable_interactive_logging()
        if expected_size is not None and comm.size() != expected_size:
            raise RuntimeError(
                f"this job expects {expected_size} ranks but runs on {comm.size()}; launch it "
                f"with `horovodrun -np {expected_size} -H localhost:{expected_size} python ...`")
        self.input_mode = input_mode
        self.sharding_seed = sharding_seed
        self.keras_file_max_bytes = keras_file_max_bytes
        super().__init__(_HorovodExtended(self, "/cpu:0"))

    @property
    def rank(self) -> int:
        return comm.rank()

    @property
    def size(self) -> int:
        return comm.size()

    def rows_per_rank(self, global_rows: tf.Tensor) -> tf.Tensor:
        """Samples of each rank (int64 [size]) in a global batch (see sharding.rows_per_rank)."""
        return sharding.rows_per_rank(global_rows, self.size)

    def local_rows(self, global_rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(start, count) of this rank's slice of a global batch of `global_rows` samples."""
        return sharding.local_rows(global_rows, self.rank, self.size)

    def slice_dataset(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """Each element (a global batch) cut to this rank's samples. In "replicated_ids" input
        mode, ragged and sparse features (the ids) stay global; dense ones are cut."""
        keep_ids_global = self.input_mode == InputMode.REPLICATED

        def cut(x):
            if keep_ids_global and isinstance(x, (tf.RaggedTensor, tf.SparseTensor)):
                return x
            rows = x.dense_shape[0] if isinstance(x, tf.SparseTensor) else tf.shape(x)[0]
            start, count = self.local_rows(rows)
            if isinstance(x, tf.SparseTensor):
                return tf.sparse.slice(x, tf.concat([[start], tf.zeros_like(x.dense_shape[1:])], 0),
                                       tf.concat([[count], x.dense_shape[1:]], 0))
            return x[start:start + count]

        if self.size == 1:
            return dataset
        return dataset.map(lambda *batch: tf.nest.map_structure(cut, batch if len(batch) > 1
                                                                  else batch[0]))

    def distribute_dataset(self, dataset: tf.data.Dataset):
        """The dataset of global batches, distributed: this rank iterates its slices."""
        return self.experimental_distribute_dataset(dataset)


def current_strategy(layer_name: str) -> DESStrategy:
    """The DESStrategy whose scope is active, or an error that says how to get one."""
    strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if not isinstance(strategy, DESStrategy):
        raise RuntimeError(
            f"{layer_name} must be created inside `des_tf.DESStrategy().scope()`, e.g.\n"
            "    strategy = des_tf.DESStrategy()\n"
            "    with strategy.scope():\n"
            "        model = ...\n"
            f"(found {type(strategy).__name__ if strategy else 'no strategy'})")
    return strategy

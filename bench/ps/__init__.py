"""A real TensorFlow ParameterServerStrategy baseline for des-tf (bench/ps_baseline.py).

Modules: `flags` (the command line), `cluster` (processes, ports, the loopback counter;
no TensorFlow), `server` (one tf.distribute.Server), `model` (the PS versions of LR,
Wide&Deep and DeepFM with their optimizers), `coordinator` (ParameterServerStrategy +
ClusterCoordinator: training, measurement, evaluation).
"""

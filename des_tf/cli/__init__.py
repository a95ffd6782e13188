"""The `python -m des_tf.train` command line: flags, job set-up, progress and reports."""

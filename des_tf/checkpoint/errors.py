"""The error every checkpoint failure raises, on every rank."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written, read or verified; nothing was half-applied."""

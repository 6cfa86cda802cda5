"""The one exception a user sees when a checkpoint cannot be used."""


class CheckpointError(ValueError):
    """A checkpoint directory is unusable: corrupted, incomplete, from another model or format version.

    The message names the path, what is wrong and how to fix it.
    """

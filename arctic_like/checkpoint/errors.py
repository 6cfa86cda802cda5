"""The exceptions a user sees when a checkpoint cannot be used or cannot be written."""

import errno


class CheckpointError(ValueError):
    """A checkpoint directory is unusable: corrupted, incomplete, from another model or format version.

    The message names the path, what is wrong and how to fix it.
    """


class CorruptCheckpointError(CheckpointError):
    """A checkpoint's files are damaged: missing, unreadable, or not matching the checksums in its manifest.

    `auto_resume` skips such a checkpoint (with a warning naming it) and falls back to the previous one.
    """


class CheckpointWriteError(OSError):
    """A checkpoint could not be written because the disk is full; the partial one was removed.

    An `OSError` with `errno.ENOSPC`; the message says where, and which earlier checkpoint is intact.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return str(self.strerror)

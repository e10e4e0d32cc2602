"""User-facing errors: the CLI prints these as one line and exits with code 2."""

from __future__ import annotations


class NoizeNetError(Exception):
    """A problem the user can fix (bad input, bad config, missing file).

    The command line prints ``str(error)`` on one line and exits with code 2; anything else is a
    bug and keeps its traceback.
    """


class ConfigError(NoizeNetError, ValueError):
    """An invalid setting: names the field, the value and what was expected."""


class AudioError(NoizeNetError):
    """An audio file that cannot be used: names the file and the problem."""


class WriteError(NoizeNetError, OSError):
    """A file or folder that could not be written (no permission, full disk): names the path.

    Also an :class:`OSError`, so code that handles failed writes as such keeps working.
    """


class CheckpointError(NoizeNetError):
    """A checkpoint or weights file that cannot be trusted: truncated, tampered, foreign or from
    an incompatible version. Names the file."""


class TrainingDivergedError(NoizeNetError):
    """Training kept producing non-finite losses or gradients, even after rolling back with a
    smaller learning rate (paper 5.4: once NaN appears, a model does not recover)."""


class TrainingInterruptedError(NoizeNetError):
    """SIGINT or SIGTERM stopped training at a step boundary after saving a checkpoint.

    ``exit_code`` is the shell's convention for the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, message: str, *, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum

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

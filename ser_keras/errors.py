"""User-facing errors.

Everything a user can fix (a wrong path, a bad option, unreadable audio) raises an
``SERError`` subclass whose message says what to do. ``cli.py`` prints the message as
one line on stderr and exits non-zero; nothing else is ever shown as a traceback.
"""


class SERError(Exception):
    """Base class for errors the user can act on."""

    exit_code = 1


class ConfigError(SERError):
    """A bad option, unknown architecture / dataset / ``--set`` key."""

    exit_code = 2


class DataError(SERError):
    """A missing, empty or unrecognisable corpus folder."""


class AudioError(SERError):
    """One audio file that cannot be decoded (empty, corrupt, not audio, silent)."""


class DownloadError(SERError):
    """A corpus download that failed, did not verify, or an archive that is unsafe or corrupt."""


class RunDirError(SERError):
    """A path that is not a run directory or a SavedModel."""

"""One error hierarchy for rtdecode.

Every error says what went wrong, what was expected and how to fix it. Each
class carries the process exit code the CLI uses when it ends the program, so
systemd / Docker / scripts can tell start-up failures apart.
"""

from __future__ import annotations


class RtdecodeError(Exception):
    """Base class of every rtdecode error.

    Parameters
    ----------
    what : str
        What went wrong.
    fix : str, optional
        How to fix it (appended to the message as "Fix: ...").
    """

    exit_code: int = 1

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(what if not fix else f"{what}\n  Fix: {fix}")


class ConfigError(RtdecodeError):
    """Invalid configuration: a field is missing, unknown or out of range."""

    exit_code = 2


class SourceError(RtdecodeError):
    """The input stream cannot be found, opened or does not match expectations."""

    exit_code = 3


class ModelError(RtdecodeError):
    """A model file is missing, corrupt or breaks the streaming-state contract."""

    exit_code = 4


class MissingModelError(ModelError, ConfigError):
    """A model file named by the configuration does not exist (exit code 4, like every model fault).

    Also a :class:`ConfigError`: the fix is usually in the config's ``model`` path.
    """

    exit_code = 4


class SinkError(RtdecodeError):
    """The output socket cannot be bound or used."""

    exit_code = 5


class DataError(RtdecodeError):
    """A recording file cannot be read or has an unexpected layout."""

    exit_code = 6


class ProtocolError(RtdecodeError):
    """A wire message is malformed (bad magic, version, size)."""

    exit_code = 7


class StageError(RtdecodeError):
    """A preprocessing stage got input it cannot process (wrong shape, rate)."""

    exit_code = 8

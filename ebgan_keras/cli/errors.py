"""The errors of `ebgan-keras`: what is the user's to fix, and what is not."""

from __future__ import annotations


class UsageError(Exception):
    """A user error: printed as one line, exit code 2, no traceback."""


class PeerFailure(RuntimeError):
    """Another process of a distributed run was lost: one line, exit code 3."""


def user_errors() -> tuple:
    """The exceptions that are the user's to fix: one line, exit code 2."""
    from ebgan_keras.files import RunFolderError
    from ebgan_keras.memory import MemoryBudgetError
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.sweeps import SweepError
    from ebgan_keras.run.training import DataError

    return (
        UsageError,
        ConfigError,
        DataError,
        RunFolderError,
        MemoryBudgetError,
        FloatingPointError,
        SweepError,
    )

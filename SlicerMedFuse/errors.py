"""The backend's exceptions and the exit codes the CLI maps them to.

Every error a user can cause is a :class:`MedFuseError` whose message is one sentence that names
the fix. The CLI prints that sentence (no traceback unless ``--debug``) and exits with the
error's :class:`ExitCode`. The codes are part of the documented interface (README, docs/cli.md):
Slicer's runner and scripts rely on them.
"""

from __future__ import annotations

import enum

__all__ = [
    "Cancelled",
    "ExitCode",
    "InputError",
    "MedFuseError",
    "ModelError",
    "ResourceError",
    "UsageError",
]


class ExitCode(enum.IntEnum):
    """Process exit codes of ``medfuse``."""

    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception (traceback with --debug)
    USAGE = 2  # wrong command line: unknown task, role or parameter
    INPUT = 3  # bad input data: unreadable, wrong dimension, mismatched geometry, NaNs, empty
    MODEL = 4  # missing, corrupt or mismatched model bundle
    RESOURCE = 5  # out of memory, device unavailable, disk full
    CANCELLED = 130  # cancelled by the user (same as SIGINT in shells)


class MedFuseError(Exception):
    """Base class: an error with a one-sentence message for the user."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(MedFuseError):
    """The command or API call is wrong (unknown task, role, parameter or value)."""

    exit_code = ExitCode.USAGE


class InputError(MedFuseError):
    """Input data cannot be used as given."""

    exit_code = ExitCode.INPUT


class ModelError(MedFuseError):
    """A model bundle is missing, corrupt (sha256 mismatch) or does not fit the task."""

    exit_code = ExitCode.MODEL


class ResourceError(MedFuseError):
    """The machine cannot do the work as asked (memory, device, disk)."""

    exit_code = ExitCode.RESOURCE


class Cancelled(MedFuseError):
    """The user cancelled the job."""

    exit_code = ExitCode.CANCELLED

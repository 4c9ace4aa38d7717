"""Argument parsing, dispatch, and the one place errors become messages and exit codes.

Exit codes are :class:`SlicerMedFuse.errors.ExitCode`: 0 ok, 1 internal error, 2 usage,
3 bad input, 4 model, 5 resources, 130 cancelled. Without ``--debug`` a failure prints one
sentence on stderr (and an ``error`` event with ``--progress json``), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import traceback
from collections.abc import Sequence

import SlicerMedFuse
from SlicerMedFuse.cli import (
    batch_cmd,
    demo_cmd,
    evaluate_cmd,
    info_cmd,
    models_cmd,
    run_cmd,
    serve_cmd,
    tasks_cmd,
    train_cmd,
)
from SlicerMedFuse.errors import Cancelled, ExitCode, MedFuseError
from SlicerMedFuse.memory import reuse_freed_memory

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medfuse",
        description="SlicerMedFuse: multi-modal medical image analysis (hemorrhage CT, breast MRI, registration, super-resolution).",
        epilog="Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 model, 5 resources, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"SlicerMedFuse {SlicerMedFuse.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (info_cmd, tasks_cmd, models_cmd, run_cmd, batch_cmd, train_cmd, evaluate_cmd, demo_cmd, serve_cmd):
        module.add_parser(commands)
    return parser


class _Terminate(Exception):
    """Raised from the SIGTERM/SIGHUP handler so that clean-up (scratch folders, temp files) runs."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Terminate()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    reuse_freed_memory()  # large tensors from the heap, not a fresh mmap each (see SlicerMedFuse.memory)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s: %(message)s")
    # SIGTERM (kill, Slicer's cancel) and SIGHUP (the terminal or SSH session closed) cancel cleanly. SIGINT
    # keeps Python's default: a job started in the background by a script inherits an ignored SIGINT
    # (POSIX shells do that) and then runs to the end, as such jobs should (docs/bad-input.md).
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_sigterm)
    progress = None
    try:
        factory = getattr(args, "progress_factory", None)
        progress = factory(args) if factory is not None else None
        return int(args.handler(args, progress) or ExitCode.OK)
    except (KeyboardInterrupt, _Terminate):
        error: MedFuseError = Cancelled("Cancelled; no output was written.")
    except MedFuseError as caught:
        error = caught
        if args.debug:
            traceback.print_exc()
    except Exception as caught:  # a bug: say so briefly, details with --debug
        if args.debug:
            traceback.print_exc()
        error = MedFuseError(
            f"Internal error ({type(caught).__name__}: {caught}); run again with --debug and report it."
        )
    if progress is not None:
        progress.error(error.exit_code, type(error).__name__, error.message)
    print(f"medfuse: {error.message}", file=sys.stderr)
    return int(error.exit_code)

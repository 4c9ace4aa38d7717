"""Ending a job's child process group, and recognising a child left behind by an earlier server."""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["end_orphan", "signal_group"]


def signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by ``pid`` (the child and anything it started); gone is fine."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def end_orphan(pid: int | None, job_folder: Path) -> bool:
    """Kill a job's child that outlived its server (the server was killed), so it writes nothing more.

    The pid is trusted only when the process's command line names the job folder (pids are reused);
    where ``/proc`` does not exist the check cannot be made and nothing is killed.

    Returns:
        Whether a process was killed.
    """
    if not pid:
        return False
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if str(job_folder) not in command_line:
        return False
    signal_group(pid, signal.SIGKILL)
    return True

"""One way to run a measured command for every benchmark: wall and CPU time, peak memory (MiB), exit code.

Every benchmark of the project (registration, hemorrhage, breast, super-resolution) runs each
measured method in its own process through :func:`run_measured`, so the numbers of ours and of
the peers are taken the same way::

    import sys
    from harness import run_measured   # benchmarks/ on sys.path (benchmarks/<task>/*.py add it)

    ours = run_measured((sys.executable, "-m SlicerMedFuse", ["run", "hemorrhage", ...]), timeout_s=600)
    peer = run_measured(("/work/bench-venv-hem/bin/python", "benchmarks/hemorrhage/run_peers.py",
                         ["worker-blast", ...]), log=Path("blast.log"))
    if not ours.ok:
        raise SystemExit(f"ours failed: {ours.stderr_tail}")
    row = {"wall_s": ours.wall_s, "cpu_s": ours.cpu_s, "peak_rss_mib": ours.peak_rss_mib}

**Peak memory.** A Python command ``(python, target, args)`` (``target`` is ``"-m MODULE"`` or a
script path) is started through :mod:`measured_child`, which runs the target in that interpreter
and at its end writes the process's own peak RSS (``VmHWM``) and CPU time; ``peak_method`` is
``"VmHWM"``. A command given as a plain argument list (not Python, or a Python that must not be
wrapped) is measured by ``os.wait4``'s ``ru_maxrss`` and flagged ``peak_method: "wait4"``: Linux
starts a child's ``ru_maxrss`` at the parent's resident size when it forks and keeps it across
``exec``, so a small command run by a large driver (one that imported torch) reports the driver's
size instead of its own. Its CPU time also includes the descendants it waited for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LAUNCHER", "Measurement", "PythonCommand", "peak_cell", "run_measured", "stored_peak_mib"]

#: The stdlib-only launcher that records a Python child's own peak memory and CPU time.
LAUNCHER = Path(__file__).resolve().with_name("measured_child.py")
#: (python executable, ``"-m MODULE"`` or a script path, the target's arguments).
PythonCommand = tuple[str | Path, str | Path, Sequence[str | Path]]
#: Seconds between a timeout's SIGTERM (the launcher still writes its record) and SIGKILL.
TERMINATE_GRACE_S = 5.0
#: Peak-memory fields of results written before this harness, and their factor to MiB (all were
#: ``ru_maxrss`` KiB / 1024 or / 1024**2).
LEGACY_PEAK_FIELDS = {"peak_rss_mb": 1.0, "peak_rss_gb": 1024.0}
#: Characters of stdout / stderr kept in a :class:`Measurement` (the end of each).
TAIL_CHARS = 20_000


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What one measured run cost and how it ended.

    Attributes:
        command: The argument list that was started (with the launcher for Python commands).
        wall_s: Wall-clock seconds from start to exit, seen by the caller.
        cpu_user_s: User CPU seconds of the process itself (all its threads).
        cpu_system_s: System CPU seconds of the process itself.
        peak_rss_mib: Peak resident set size in MiB (None when it could not be read).
        peak_method: ``"VmHWM"`` (read in the child: exact), ``"wait4"`` (``ru_maxrss``: at least
            the parent's size at fork) or ``"ru_maxrss"`` (the child's own, where /proc is missing).
        returncode: Exit status; negative: killed by that signal (as :mod:`subprocess` reports).
        timed_out: True when ``timeout_s`` ran out and the process was terminated.
        stdout_tail: The last :data:`TAIL_CHARS` characters of stdout (of the log with ``log``).
        stderr_tail: The last characters of stderr ("" with ``log``, where it is merged into stdout).
        load_1min_before: The machine's 1-minute load average at start.
        load_1min_after: The 1-minute load average at exit.
        children_cpu_user_s: User CPU seconds of the children the Python child waited for (None
            for ``wait4`` runs, whose ``cpu_*`` already include them).
        children_cpu_system_s: System CPU seconds of those children.
        children_peak_rss_mib: The largest of those children's ``ru_maxrss`` in MiB (an upper bound).
        error: The exception that ended a Python child, if any.
        measured_at: UTC time of the start, ISO 8601.
    """

    command: list[str]
    wall_s: float
    cpu_user_s: float
    cpu_system_s: float
    peak_rss_mib: float | None
    peak_method: str
    returncode: int
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    load_1min_before: float
    load_1min_after: float
    children_cpu_user_s: float | None = None
    children_cpu_system_s: float | None = None
    children_peak_rss_mib: float | None = None
    error: str | None = None
    measured_at: str = ""

    @property
    def ok(self) -> bool:
        """True when the command exited with 0 in time."""
        return self.returncode == 0 and not self.timed_out

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds of the process itself."""
        return self.cpu_user_s + self.cpu_system_s

    def to_dict(self, tails: bool = False) -> dict[str, Any]:
        """The measurement as JSON-ready numbers (seconds, MiB); ``tails`` keeps stdout / stderr."""
        data = dataclasses.asdict(self)
        if not tails:
            data.pop("stdout_tail")
            data.pop("stderr_tail")
        data["cpu_s"] = round(self.cpu_s, 3)
        return data


def _python_argv(command: PythonCommand, record: Path) -> list[str]:
    if len(command) != 3:
        raise ValueError(f"a Python command is (python, target, args); got {len(command)} items: {command!r}")
    python, target, args = command
    target = str(target)
    if target.startswith("-m "):
        runnable = ["-m", target[3:].strip()]
    elif target.startswith("-"):
        raise ValueError(f"target must be '-m MODULE' or a script path, not {target!r}")
    else:
        runnable = [target]
    return [str(python), str(LAUNCHER), "--record", str(record), *runnable, *map(str, args)]


def _tail(path: Path) -> str:
    with path.open("rb") as stream:
        stream.seek(max(0, path.stat().st_size - 4 * TAIL_CHARS))
        return stream.read().decode("utf-8", errors="replace")[-TAIL_CHARS:]


def _terminate_later(
    process: subprocess.Popen, timeout_s: float, reaped: threading.Event, fired: threading.Event
) -> threading.Timer:
    """A timer that ends the process group after ``timeout_s``: SIGTERM, then SIGKILL after a grace period."""

    def stop() -> None:
        fired.set()
        for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE_S), (signal.SIGKILL, 0.0)):
            if reaped.is_set():
                return
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            reaped.wait(wait)

    timer = threading.Timer(timeout_s, stop)
    timer.daemon = True
    timer.start()
    return timer


def run_measured(
    argv: list[str] | PythonCommand,
    *,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout_s: float | None = None,
    log: Path | None = None,
) -> Measurement:
    """Run one command in its own process and measure it.

    Args:
        argv: A Python command ``(python, target, args)``, started through :mod:`measured_child`
            (peak memory from VmHWM, read in the child), ``target`` being ``"-m MODULE"`` or a script
            path; or any other command as an argument list (peak from ``os.wait4``, less exact:
            see the module docstring).
        env: The child's environment (default: this process's).
        cwd: The child's working folder (default: this process's).
        timeout_s: Seconds before the process group gets SIGTERM (a Python child still writes its
            record), then SIGKILL :data:`TERMINATE_GRACE_S` s later; None waits for ever.
        log: A file that receives stdout and stderr merged (the whole output); without it both are
            captured separately and only their tails kept.

    Returns:
        The :class:`Measurement`; a failed, crashed or timed-out command is reported in it, never raised.
    """
    with tempfile.TemporaryDirectory(prefix="medfuse-measured-") as scratch:
        record = Path(scratch) / "record.json"
        command = _python_argv(argv, record) if isinstance(argv, tuple) else [str(part) for part in argv]
        out_path = log if log is not None else Path(scratch) / "stdout"
        err_path = Path(scratch) / "stderr"
        load_before = os.getloadavg()[0]
        measured_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        reaped, fired, timer = threading.Event(), threading.Event(), None
        with out_path.open("wb") as stdout, err_path.open("wb") as stderr:
            started = time.perf_counter()
            # its own session, so a timeout ends the whole group (workers the command started) too
            process = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.STDOUT if log is not None else stderr,
                start_new_session=True,
            )
            try:
                if timeout_s is not None:
                    timer = _terminate_later(process, timeout_s, reaped, fired)
                _, status, usage = os.wait4(process.pid, 0)
            except BaseException:  # interrupted driver: leave no orphan behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise
            finally:
                reaped.set()
                if timer is not None:
                    timer.cancel()
            wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
        child = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
        measured = {
            "command": command,
            "wall_s": round(wall, 3),
            "returncode": process.returncode,
            "timed_out": fired.is_set(),
            "stdout_tail": _tail(out_path),
            "stderr_tail": "" if log is not None else _tail(err_path),
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
            "measured_at": measured_at,
        }
    if child is None:  # not Python, or a child killed before it could write its record
        return Measurement(
            cpu_user_s=round(usage.ru_utime, 3),
            cpu_system_s=round(usage.ru_stime, 3),
            peak_rss_mib=round(usage.ru_maxrss / 1024.0, 1),  # KiB on Linux
            peak_method="wait4",
            **measured,
        )
    return Measurement(
        cpu_user_s=child["cpu_user_s"],
        cpu_system_s=child["cpu_system_s"],
        peak_rss_mib=child["peak_rss_mib"],
        peak_method=child["peak_method"],
        children_cpu_user_s=child["children_cpu_user_s"],
        children_cpu_system_s=child["children_cpu_system_s"],
        children_peak_rss_mib=child["children_peak_rss_mib"],
        error=child["error"],
        **measured,
    )


def stored_peak_mib(entry: dict[str, Any]) -> tuple[float | None, str]:
    """The peak RSS (MiB) of a stored result row and how it was measured, old rows included.

    Args:
        entry: A row of a results file: ``peak_rss_mib`` (+ ``peak_method``) as this harness writes
            it, or a field of :data:`LEGACY_PEAK_FIELDS` from a file written before it.

    Returns:
        (MiB or None when the row has none, the method: ``peak_method`` of the row, ``"legacy"``
        for the old fields).
    """
    if "peak_rss_mib" in entry:
        return entry["peak_rss_mib"], entry.get("peak_method", "VmHWM")
    for field, to_mib in LEGACY_PEAK_FIELDS.items():
        if entry.get(field) is not None:
            return round(entry[field] * to_mib, 1), "legacy"
    return None, "none"


def peak_cell(entry: dict[str, Any]) -> str:
    """A table cell for a stored row's peak RSS: whole MiB, with the method where it is not VmHWM.

    Args:
        entry: A results row (see :func:`stored_peak_mib`).

    Returns:
        ``"1411"``, ``"1622 (wait4)"``, ``"900 (legacy)"`` or ``"-"`` when the row has no peak.
    """
    peak, method = stored_peak_mib(entry)
    return "-" if peak is None else f"{peak:.0f}" + ("" if method == "VmHWM" else f" ({method})")

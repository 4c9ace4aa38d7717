"""Start the MedFuse backend out of process, stream its JSON-line events, cancel its process tree.

The backend CLI (``python -m SlicerMedFuse run ... --progress json``) prints one JSON event per
line on stdout (schema: ``SlicerMedFuse.progress.EVENT_SCHEMA``) and exits with an
``SlicerMedFuse.errors.ExitCode``. This module builds that command line and runs it with plain
``subprocess`` and two reader threads, so it needs neither Qt nor the Slicer application: a module
Logic polls :meth:`Job.poll` from a Qt timer, tests and consoles use :func:`run_to_completion`.

The process runner is a :class:`ProcessRunner` protocol so a Logic can be tested with a fake one.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "Job",
    "ProcessRunner",
    "SubprocessJob",
    "SubprocessRunner",
    "backend_command",
    "backend_environment",
    "default_python_executable",
    "drain_events",
    "run_to_completion",
]

BACKEND_MODULE = "SlicerMedFuse"


# --- the command --------------------------------------------------------------------------------
def _inside_slicer_app() -> bool:
    slicer = sys.modules.get("slicer")
    return getattr(slicer, "app", None) is not None


def default_python_executable() -> str:
    """The interpreter that runs the backend.

    Inside the Slicer application ``sys.executable`` is Slicer itself, so this is ``PythonSlicer``
    (found on PATH, which Slicer's launcher sets, else beside ``sys.executable``). Anywhere else
    (slicer-core, a plain venv) it is ``sys.executable``.
    """
    if not _inside_slicer_app():
        return sys.executable
    name = "PythonSlicer.exe" if os.name == "nt" else "PythonSlicer"
    found = shutil.which("PythonSlicer")
    if found:
        return found
    beside = Path(sys.executable).resolve().parent / name
    if beside.is_file():
        return str(beside)
    raise RuntimeError("PythonSlicer was not found on PATH or beside the Slicer executable; reinstall Slicer.")


def _backend_root() -> str:
    spec = importlib.util.find_spec(BACKEND_MODULE)  # locates the package without importing it (or torch)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"The {BACKEND_MODULE} backend package cannot be found; reinstall the SlicerMedFuse extension."
        )
    return str(Path(next(iter(spec.submodule_search_locations))).resolve().parent)


def backend_environment() -> dict[str, str]:
    """``os.environ`` with the backend's folder first on ``PYTHONPATH`` and unbuffered output."""
    environment = dict(os.environ)
    existing = environment.get("PYTHONPATH", "")
    environment["PYTHONPATH"] = os.pathsep.join([_backend_root(), *([existing] if existing else [])])
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pair(option: str, key: str, value: Any) -> list[str]:
    if not key or "=" in key:
        raise ValueError(f"{option} name must be non-empty and contain no '=', got {key!r}")
    return [option, f"{key}={_format_value(value)}"]


def backend_command(
    task: str,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    params: Mapping[str, Any] | None = None,
    *,
    device: str = "auto",
    python: str | None = None,
    report: str | None = None,
    model: str | os.PathLike | None = None,
) -> list[str]:
    """The argument list of ``python -m SlicerMedFuse run TASK ... --progress json``.

    Args:
        task: task name, e.g. ``"superres"``.
        inputs: input role -> file path.
        outputs: output role -> file path to write (empty for a task whose result is its report,
            e.g. ``aln-metastasis``).
        params: parameter name -> value (bools become ``true``/``false``; None values are left out).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        python: interpreter; default :func:`default_python_executable`.
        report: optional path for the JSON job report.
        model: model bundle id (``id`` or ``id@version``) or bundle folder, passed as ``--model``;
            None lets the backend use the task's default model.
    """
    if not task:
        raise ValueError("task must be a task name, got an empty string")
    command = [python or default_python_executable(), "-m", BACKEND_MODULE, "run", task]
    for role, path in inputs.items():
        command += _pair("--input", role, os.fspath(path))
    for role, path in outputs.items():
        command += _pair("--output", role, os.fspath(path))
    for name, value in (params or {}).items():
        if value is not None:
            command += _pair("--param", name, value)
    command += ["--device", device, "--progress", "json"]
    if model is not None and os.fspath(model):
        command += ["--model", os.fspath(model)]
    if report is not None:
        command += ["--report", os.fspath(report)]
    return command


# --- protocols ----------------------------------------------------------------------------------
class Job(Protocol):
    """A running backend process as the module Logic sees it."""

    @property
    def done(self) -> bool: ...  # exited and every event read

    @property
    def returncode(self) -> int | None: ...

    @property
    def error_message(self) -> str: ...  # the error event's sentence, else the last stderr lines

    def poll(self) -> list[dict[str, Any]]: ...  # events since the last call; never blocks

    def cancel(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ProcessRunner(Protocol):
    """Starts a command and returns a :class:`Job`."""

    def start(self, command: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> Job: ...


# --- subprocess implementation ------------------------------------------------------------------
def _parse_line(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            return event
    return {"event": "log", "level": "info", "message": text}


def drain_events(events: queue.Queue) -> list[dict[str, Any]]:
    """Every event a reader thread has queued so far, oldest first (never blocks)."""
    taken: list[dict[str, Any]] = []
    while True:
        try:
            taken.append(events.get_nowait())
        except queue.Empty:
            return taken


class SubprocessJob:
    """A :class:`Job` backed by ``subprocess.Popen`` (see :class:`SubprocessRunner`).

    Args:
        process: the started process, stdout and stderr as text pipes.
        cancel_grace_s: seconds between the polite stop (SIGTERM) and the forced one (SIGKILL).
        stderr_lines: how many of the last stderr lines to keep for :attr:`error_message`.
    """

    #: After the process exits, how long to wait for a grandchild that still holds the pipes open.
    PIPE_DRAIN_S = 2.0

    def __init__(self, process: subprocess.Popen, *, cancel_grace_s: float = 5.0, stderr_lines: int = 50) -> None:
        self.process = process
        self.cancel_grace_s = cancel_grace_s
        self.cancelled = False
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._error_event: dict[str, Any] | None = None
        self._exited_at: float | None = None
        self._readers = [
            threading.Thread(target=self._read_stdout, name="medfuse-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="medfuse-stderr", daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # readers
    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = _parse_line(line)
            if event is None:
                continue
            if event["event"] == "error":
                self._error_event = event
            self._events.put(event)
        self.process.stdout.close()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self._stderr.append(line.rstrip())
        self.process.stderr.close()

    def _readers_finished(self) -> bool:
        if not any(reader.is_alive() for reader in self._readers):
            return True
        return self._exited_at is not None and time.monotonic() - self._exited_at > self.PIPE_DRAIN_S

    # Job API
    @property
    def returncode(self) -> int | None:
        code = self.process.poll()
        if code is not None and self._exited_at is None:
            self._exited_at = time.monotonic()
        return code

    @property
    def done(self) -> bool:
        return self.returncode is not None and self._readers_finished() and self._events.empty()

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> list[dict[str, Any]]:
        return drain_events(self._events)

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr)

    @property
    def error_message(self) -> str:
        if self._error_event is not None:
            return str(self._error_event.get("message", ""))
        code = self.returncode
        if self.cancelled:
            return "The job was cancelled."
        if code is None or code == 0:
            return ""
        tail = "\n".join(list(self._stderr)[-10:])
        return tail or f"The backend stopped with exit code {code} and no message."

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process exits (raises ``subprocess.TimeoutExpired``); events stay queued for :meth:`poll`."""
        code = self.process.wait(timeout)
        self.returncode  # noqa: B018  (records the exit time)
        for reader in self._readers:
            reader.join(self.PIPE_DRAIN_S)
        return code

    def cancel(self) -> None:
        """End the backend and every process it started; returns at once (the hard kill follows later)."""
        if self.returncode is not None and self._readers_finished():
            return
        self.cancelled = True
        if os.name == "nt":
            # taskkill /T ends the tree; there is no gentler signal that reaches grandchildren.
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(self.process.pid)], capture_output=True, check=False)
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        threading.Thread(target=self._kill_after_grace, name="medfuse-kill", daemon=True).start()

    def _kill_after_grace(self) -> None:
        try:
            self.process.wait(self.cancel_grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Also after a clean exit of the leader: grandchildren that ignored SIGTERM must not survive.
        _signal_group(self.process.pid, signal.SIGKILL)


def _signal_group(group_id: int, signal_number: int) -> None:
    try:
        os.killpg(group_id, signal_number)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


class SubprocessRunner:
    """The default :class:`ProcessRunner`: the backend in its own process group / session.

    Args:
        cancel_grace_s: seconds a cancelled backend gets to stop before it is killed.
    """

    def __init__(self, cancel_grace_s: float = 5.0) -> None:
        self.cancel_grace_s = cancel_grace_s

    def start(
        self, command: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> SubprocessJob:
        options: dict[str, Any] = {}
        if os.name == "nt":
            options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            options["start_new_session"] = True  # own process group: cancel reaches every descendant
        process = subprocess.Popen(
            [os.fspath(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            **options,
        )
        return SubprocessJob(process, cancel_grace_s=self.cancel_grace_s)


def run_to_completion(
    job: Job, on_event: Callable[[dict[str, Any]], None] | None = None, poll_interval: float = 0.1
) -> int:
    """Poll ``job`` until it is done, handing each event to ``on_event``; returns the exit code.

    Ctrl+C cancels the job (its whole process tree) and re-raises.
    """
    try:
        while True:
            finished = job.done  # read before polling so the last events are not missed
            for event in job.poll():
                if on_event is not None:
                    on_event(event)
            if finished:
                break
            time.sleep(poll_interval)
    except KeyboardInterrupt:
        job.cancel()
        raise
    code = job.returncode
    return -1 if code is None else code

"""Runs queued jobs, at most ``max_concurrent_jobs`` at once, each as ``python -m SlicerMedFuse run ... --progress json``.

A job in a child process can be cancelled by ending its process group, and a crash in it (out of
memory, a segfault in a library) fails that job only. The child writes its JSON events straight into
the job's ``events.jsonl``, which the progress stream relays; outputs are committed by the child only
when the whole job succeeded, so a cancelled or failed job leaves no output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import SlicerMedFuse
from SlicerMedFuse.errors import ExitCode
from SlicerMedFuse.serve.config import ServerConfig
from SlicerMedFuse.serve.jobs import TERMINAL_STATES, JobNotFound, JobStore
from SlicerMedFuse.serve.processes import signal_group

__all__ = ["JobRunner", "job_command"]

STOP_MESSAGE = "The server stopped while this job was running; submit it again."
CANCEL_MESSAGE = "Cancelled; no output was written."
_log = logging.getLogger(__name__)
_PACKAGE_PARENT = str(Path(SlicerMedFuse.__file__).resolve().parents[1])


def job_command(request: dict[str, Any], folder: Path, config: ServerConfig) -> list[str]:
    """The command line of a job's child process, from its stored request.

    Args:
        request: the job's request (task, inputs as server paths, params as text, model, outputs as role -> file name).
        folder: the job folder.
        config: the server settings (device, threads).

    Returns:
        argv for :class:`subprocess.Popen`.
    """
    command = [sys.executable, "-m", "SlicerMedFuse", "run", request["task"], "--progress", "json"]
    command += ["--report", str(folder / "report.json"), "--device", config.device]
    command += ["--threads", str(config.threads_per_job)]
    for role, path in request["inputs"].items():  # uploads are relative to the job folder, server-side paths absolute
        command += ["--input", f"{role}={folder / path}"]
    for role, name in request["outputs"].items():
        command += ["--output", f"{role}={folder / 'outputs' / name}"]
    for name, value in request["params"].items():
        command += ["--param", f"{name}={value}"]
    if request.get("model"):
        command += ["--model", request["model"]]
    return command


class JobRunner:
    """A fixed pool of worker threads, each running one job's child process at a time.

    Args:
        store: the job store.
        config: server settings (concurrency, device, cancel grace).
    """

    def __init__(self, store: JobStore, config: ServerConfig) -> None:
        self.store = store
        self.config = config
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()  # guards the queued -> running transition against cancel
        self._children: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._killers: dict[str, threading.Timer] = {}
        self._stopping = False
        self._workers = [
            threading.Thread(target=self._work, name=f"medfuse-job-{n}", daemon=True)
            for n in range(config.max_concurrent_jobs)
        ]

    def start(self, queued: list[str]) -> None:
        """Start the workers and queue ``queued`` (jobs left queued by an earlier server)."""
        for job_id in queued:
            self._queue.put(job_id)
        for worker in self._workers:
            worker.start()

    def submit(self, job_id: str) -> None:
        """Queue a job that :meth:`JobStore.create` made."""
        self._queue.put(job_id)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one never starts; a running one's process group gets SIGTERM, then SIGKILL.

        Returns:
            The job's status (a finished job is left as it is).
        """
        with self._lock:
            status = self.store.status(job_id)
            if status["state"] == "queued":
                self.store.append_event(job_id, _error_event(ExitCode.CANCELLED, "Cancelled", CANCEL_MESSAGE))
                return self.store.update(
                    job_id,
                    state="cancelled",
                    finished=time.time(),
                    exit_code=int(ExitCode.CANCELLED),
                    message=CANCEL_MESSAGE,
                )
            child = self._children.get(job_id)
            if child is None:
                return status
            self._cancelled.add(job_id)
        self._end(job_id, child)
        return self.store.status(job_id)

    def stop(self) -> None:
        """End every running child (its job is reported failed) and let the workers finish."""
        with self._lock:
            self._stopping = True
            children = list(self._children.values())
        for child in children:
            signal_group(child.pid, signal.SIGKILL)
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=30)

    def _end(self, job_id: str, child: subprocess.Popen) -> None:
        signal_group(child.pid, signal.SIGTERM)  # the CLI turns SIGTERM into a clean cancel (exit 130)
        killer = threading.Timer(self.config.cancel_grace_s, signal_group, (child.pid, signal.SIGKILL))
        killer.daemon = True
        with self._lock:
            self._killers[job_id] = killer  # replaced by an immediate kill of the group once the child is reaped
        killer.start()

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception as error:  # a bug here must fail this job, never the worker
                _log.exception("job %s could not be run", job_id)
                with contextlib.suppress(JobNotFound):  # its folder was removed by hand
                    self._finish(
                        job_id, "failed", int(ExitCode.INTERNAL), f"The server could not run this job ({error})."
                    )

    def _run(self, job_id: str) -> None:
        folder = self.store.folder(job_id)
        command = job_command(self.store.request(job_id), folder, self.config)
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_PARENT, os.environ.get("PYTHONPATH")])),
        }
        with self._lock:
            if self._stopping or self.store.status(job_id)["state"] != "queued":
                return  # cancelled while queued, or the server is stopping (the job stays queued for the next start)
            (folder / "outputs").mkdir(exist_ok=True)
            with open(folder / "events.jsonl", "ab") as events, open(folder / "stderr.txt", "ab") as errors:
                child = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=events,
                    stderr=errors,
                    env=environment,
                    start_new_session=True,
                )
            self._children[job_id] = child
            self.store.update(job_id, state="running", started=time.time(), pid=child.pid)
        code = child.wait()
        with self._lock:
            del self._children[job_id]
            killer = self._killers.pop(job_id, None)
            cancelled = job_id in self._cancelled
            self._cancelled.discard(job_id)
            stopping = self._stopping
        if killer is not None:
            killer.cancel()
        signal_group(
            child.pid, signal.SIGKILL
        )  # at once, before its id could be reused: no process of the job outlives it
        last = self.store.last_event(job_id) or {}
        if code == 0 and last.get("event") == "result":
            outputs = sorted(self.store.request(job_id)["outputs"])
            self.store.update(
                job_id, state="succeeded", finished=time.time(), exit_code=0, message="", outputs=outputs, pid=None
            )
        elif cancelled:
            self._finish(job_id, "cancelled", int(ExitCode.CANCELLED), CANCEL_MESSAGE)
        elif stopping:
            self._finish(job_id, "failed", int(ExitCode.INTERNAL), STOP_MESSAGE)
        elif last.get("event") == "error":
            self._finish(job_id, "failed", int(last.get("code", code)), str(last.get("message", "")))
        else:
            self._finish(job_id, "failed", int(ExitCode.INTERNAL), _crash_message(code))

    def _finish(self, job_id: str, state: str, code: int, message: str) -> None:
        """Record a job's end; an event log that does not end in 'result' or 'error' gets an 'error' event."""
        if self.store.status(job_id)["state"] in TERMINAL_STATES:
            return
        last = self.store.last_event(job_id) or {}
        if last.get("event") not in ("result", "error"):
            name = "Cancelled" if state == "cancelled" else "JobFailed"
            self.store.append_event(job_id, _error_event(code, name, message))
        self.store.update(job_id, state=state, finished=time.time(), exit_code=code, message=message, pid=None)


def _error_event(code: int, name: str, message: str) -> dict[str, Any]:
    return {"event": "error", "code": int(code), "name": name, "message": message}


def _crash_message(code: int) -> str:
    if code < 0:
        return f"The job's process was ended by signal {-code} (out of memory?); see stderr.txt in the job folder."
    return f"The job's process exited with code {code} without a result; see stderr.txt in the job folder."

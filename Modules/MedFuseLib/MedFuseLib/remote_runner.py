"""Run backend jobs on a ``medfuse serve`` server: a :class:`~MedFuseLib.runner.ProcessRunner` for the same Logic.

A module Logic builds the backend command line (``python -m SlicerMedFuse run TASK --input ...``) and
hands it to its runner. :class:`RemoteRunner` reads that command, uploads the inputs (the NRRD files
the Logic exported: voxels and geometry), follows the job's events over the server's event stream and,
on success, downloads every output and the report to the local paths the command named. The Logic
cannot tell the difference: it sees the same events, exit codes and files as from a local process.
The server decides the compute device; the command's ``--device`` is not sent.

Needs no Qt: events are read in a thread and handed out by :meth:`RemoteJob.poll`.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from MedFuseLib.runner import drain_events
from SlicerMedFuse.facade import MANIFEST_FILE, ExitCode, RemoteError, ServerClient, load_manifest

__all__ = ["RemoteJob", "RemoteRunner", "remote_request"]

#: Output file formats the server writes, longest first so that ``.nii.gz`` wins over ``.nii``.
_OUTPUT_FORMATS = (".nii.gz", ".hdf5", ".nrrd", ".nii", ".mha", ".h5")


def remote_request(command: list[str]) -> dict[str, Any]:
    """What a backend command line asks for, as the pieces :meth:`ServerClient.submit` takes.

    Args:
        command: argv from :func:`MedFuseLib.runner.backend_command`.

    Returns:
        ``task``, ``uploads`` (role -> local file), ``params`` (name -> text), ``model``,
        ``outputs`` (role -> local file to write) and ``report`` (local file or None).

    Raises:
        ValueError: the command has no ``run`` sub-command.
    """
    try:
        start = command.index("run") + 1
    except ValueError:
        raise ValueError(f"Not a backend 'run' command: {command!r}") from None
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("task")
    for option in ("--input", "--output", "--param"):
        parser.add_argument(option, action="append", default=[])
    for option in ("--model", "--report", "--device", "--progress"):
        parser.add_argument(option)
    args = parser.parse_args([os.fspath(part) for part in command[start:]])
    return {
        "task": args.task,
        "uploads": _pairs(args.input),
        "params": _pairs(args.param),
        "model": _server_model(args.model),
        "outputs": _pairs(args.output),
        "report": args.report,
    }


def _server_model(model: str | None) -> str | None:
    """The model as the server names it: a local bundle folder becomes ``id@version`` from its manifest.

    The Logics resolve a model to a bundle folder in the local store; the server has its own store
    and takes ids only, so the same bundle must be installed there (the server says so otherwise).
    """
    if model is None or not Path(model, MANIFEST_FILE).is_file():
        return model
    manifest = load_manifest(model)
    return f"{manifest.id}@{manifest.version}"


def _pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


def _output_format(path: str) -> str:
    name = Path(path).name.lower()
    for extension in _OUTPUT_FORMATS:
        if name.endswith(extension):
            return extension
    raise ValueError(f"The server cannot write {path}; name outputs .nrrd, .nii.gz, .nii, .mha or .h5.")


class RemoteJob:
    """One job on the server, seen through the :class:`~MedFuseLib.runner.Job` protocol.

    Args:
        client: the server's client.
        request: from :func:`remote_request`.
    """

    def __init__(self, client: ServerClient, request: Mapping[str, Any]) -> None:
        self.client = client
        self.request = dict(request)
        self.job_id: str | None = None
        self.cancelled = False
        self._returncode: int | None = None
        self._error_message = ""
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, name="medfuse-remote", daemon=True)
        self._thread.start()

    # the job on the server
    def _follow(self) -> None:
        try:
            self._returncode = self._submit_and_follow()
        except (RemoteError, OSError, ValueError) as error:  # connection lost, server refusal, local file
            message = getattr(error, "message", None) or str(error)
            self._emit({"event": "error", "code": int(ExitCode.INTERNAL), "name": "RemoteError", "message": message})
            self._returncode = int(ExitCode.INTERNAL)

    def _submit_and_follow(self) -> int:
        outputs = self.request["outputs"]
        status = self.client.submit(
            self.request["task"],
            uploads=self.request["uploads"],
            params=self.request["params"],
            model=self.request["model"],
            outputs={role: _output_format(path) for role, path in outputs.items()},
        )
        with self._lock:
            self.job_id = status["id"]
            cancel_now = self.cancelled
        if cancel_now:
            self.client.cancel(status["id"])
        for event in self.client.events(status["id"]):
            if event.get("event") == "result":
                self._download(status["id"], event)
                return int(ExitCode.OK)
            self._emit(event)
            if event.get("event") == "error":
                return int(event.get("code", ExitCode.INTERNAL))
        raise RemoteError(f"The server's event stream for job {status['id']} ended without a result; see its log.")

    def _download(self, job_id: str, result: dict[str, Any]) -> None:
        """Fetch outputs and report to the local paths, then pass on the result event naming them."""
        local = {role: str(self.client.download(job_id, role, path)) for role, path in self.request["outputs"].items()}
        if self.request["report"]:
            Path(self.request["report"]).write_text(json.dumps(self.client.report(job_id), indent=1), encoding="utf-8")
        self._emit({**result, "outputs": local})

    def _emit(self, event: dict[str, Any]) -> None:
        if event.get("event") == "error":
            self._error_message = str(event.get("message", ""))
        self._events.put(event)

    # Job protocol
    @property
    def returncode(self) -> int | None:
        return self._returncode

    @property
    def done(self) -> bool:
        return self._returncode is not None and self._events.empty()

    @property
    def error_message(self) -> str:
        if self._error_message:
            return self._error_message
        return "The job was cancelled." if self.cancelled else ""

    def poll(self) -> list[dict[str, Any]]:
        return drain_events(self._events)

    def cancel(self) -> None:
        """Ask the server to cancel (in the background: a slow network must not freeze the panel)."""
        with self._lock:
            if self.cancelled or self._returncode is not None:
                return
            self.cancelled = True
            job_id = self.job_id
        if job_id is not None:  # else the follower cancels as soon as the submission returns
            threading.Thread(target=self._cancel_quietly, args=(job_id,), daemon=True).start()

    def _cancel_quietly(self, job_id: str) -> None:
        try:
            self.client.cancel(job_id)
        except RemoteError as error:  # the event stream reports what became of the job
            self._emit({"event": "log", "level": "warning", "message": error.message})

    def wait(self, timeout: float | None = None) -> int:
        """Block until the job ended on the server (raises ``subprocess.TimeoutExpired``); events stay queued."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise subprocess.TimeoutExpired(f"medfuse job {self.job_id}", timeout or 0)
        return int(self._returncode if self._returncode is not None else ExitCode.INTERNAL)


class RemoteRunner:
    """Starts backend commands as jobs on a server.

    Args:
        client: the server's client (URL and token).
    """

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def start(self, command: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None) -> RemoteJob:  # noqa: ARG002 - the ProcessRunner signature; a server has its own environment
        return RemoteJob(self.client, remote_request(command))

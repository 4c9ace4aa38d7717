"""Jobs on disk: ``<home>/jobs/<id>/`` holds the request, the status, the event log, the outputs and the report.

Everything the server knows about a job is in its folder, so a restarted server still serves finished
results. Layout of one job folder::

    request.json   what the client asked (task, inputs as server paths, parameters, model, outputs)
    status.json    state, times, exit code, message, output roles (replaced atomically)
    events.jsonl   the child's ``--progress json`` stream (what the SSE endpoint relays)
    stderr.txt     the child's messages, for the operator
    inputs/        uploaded volumes (NRRD / NIfTI / MHA)
    outputs/       one file per requested output role, written by the child only on success
    report.json    the job report
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from SlicerMedFuse.serve.processes import end_orphan

__all__ = ["STATES", "TERMINAL_STATES", "JobNotFound", "JobStore"]

#: Every state of a job, in the order a job passes them.
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_STAGING = ".staging"

RESTART_MESSAGE = "The server restarted while this job was running; submit it again."


class JobNotFound(KeyError):
    """No job has this id (or the id is malformed)."""


class JobStore:
    """The job folders under ``root`` and their status files; safe to use from several threads.

    Args:
        root: the jobs folder (created if missing).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()

    # -- folders -----------------------------------------------------------------------------

    def folder(self, job_id: str) -> Path:
        """The folder of job ``job_id``.

        Raises:
            JobNotFound: malformed id (never a path outside the store) or no such job.
        """
        if not _ID_PATTERN.match(job_id):
            raise JobNotFound(job_id)
        folder = self.root / job_id
        if not (folder / "status.json").is_file():
            raise JobNotFound(job_id)
        return folder

    def new_staging_folder(self) -> Path:
        """A private folder for a request being received; :meth:`create` adopts it, else the caller deletes it."""
        staging = self.root / _STAGING
        staging.mkdir(exist_ok=True, mode=0o700)
        return Path(tempfile.mkdtemp(dir=staging))

    def clear_staging(self) -> None:
        """Delete what half-received requests left behind (a server killed mid-upload)."""
        shutil.rmtree(self.root / _STAGING, ignore_errors=True)

    # -- status ------------------------------------------------------------------------------

    def create(self, staging: Path, request: dict[str, Any]) -> dict[str, Any]:
        """Turn a fully received request in ``staging`` into a queued job; returns its status.

        The folder is renamed into place only once the request and status are written, so a job
        either exists completely or not at all.
        """
        job_id = uuid.uuid4().hex
        _write_json(staging / "request.json", request)
        status = {
            "id": job_id,
            "task": request["task"],
            "state": "queued",
            "created": time.time(),
            "started": None,
            "finished": None,
            "exit_code": None,
            "message": "",
            "outputs": [],
            "pid": None,
        }
        _write_json(staging / "status.json", status)
        (staging / "events.jsonl").touch()
        os.replace(staging, self.root / job_id)
        return status

    def request(self, job_id: str) -> dict[str, Any]:
        """The request of job ``job_id`` as received."""
        return json.loads((self.folder(job_id) / "request.json").read_text(encoding="utf-8"))

    def status(self, job_id: str) -> dict[str, Any]:
        """The current status of job ``job_id``."""
        return json.loads((self.folder(job_id) / "status.json").read_text(encoding="utf-8"))

    def update(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Change fields of a job's status (atomically on disk); returns the new status."""
        with self._lock:
            status = self.status(job_id)
            status.update(fields)
            _write_json(self.folder(job_id) / "status.json", status)
            return status

    def all_statuses(self) -> list[dict[str, Any]]:
        """Every job's status, oldest first."""
        found = []
        for folder in self.root.iterdir():
            if _ID_PATTERN.match(folder.name) and (folder / "status.json").is_file():
                found.append(self.status(folder.name))
        return sorted(found, key=lambda status: status["created"])

    def append_event(self, job_id: str, event: dict[str, Any]) -> None:
        """Add one event to the job's log (for endings the child could not report itself)."""
        with open(self.folder(job_id) / "events.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")

    def last_event(self, job_id: str) -> dict[str, Any] | None:
        """The last complete event in the job's log, or None."""
        lines = (self.folder(job_id) / "events.jsonl").read_text(encoding="utf-8").splitlines()
        for line in reversed(lines):
            try:
                return json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a killed child
                continue
        return None

    def recover(self) -> list[str]:
        """After a (re)start: report jobs that were running as failed, and return the queued ones to run again.

        Returns:
            Ids of jobs still queued, oldest first.
        """
        self.clear_staging()
        queued = []
        for status in self.all_statuses():
            if status["state"] == "running":
                end_orphan(status.get("pid"), self.folder(status["id"]))
                self.append_event(
                    status["id"], {"event": "error", "code": 1, "name": "ServerRestarted", "message": RESTART_MESSAGE}
                )
                self.update(
                    status["id"], state="failed", finished=time.time(), exit_code=1, message=RESTART_MESSAGE, pid=None
                )
            elif status["state"] == "queued":
                queued.append(status["id"])
        return queued


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(temporary, path)

"""Run one case in a worker process and put its output folder in place atomically.

The case's outputs, its report and its done marker are written into a private staging folder
under the output folder; only when all of them are there is the staging folder renamed to
``OUT/<case_id>``. A worker killed mid-case therefore leaves no case folder (only a staging
folder that the batch removes), and a case that was already committed by an earlier attempt is
not written a second time.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

from SlicerMedFuse.api import run_task
from SlicerMedFuse.batch.case_record import DONE_MARKER, CaseOutcome, fingerprint, read_marker, summary_values
from SlicerMedFuse.batch.cohort import Case
from SlicerMedFuse.batch.worker_state import worker_task
from SlicerMedFuse.errors import MedFuseError
from SlicerMedFuse.io import write_json_atomic
from SlicerMedFuse.io.atomic import replace_folder

__all__ = ["STAGING_FOLDER", "CaseJob", "run_case"]

#: Folder under the output folder where cases are assembled before their rename into place.
STAGING_FOLDER = ".medfuse-staging"

REPORT_FILE = "report.json"


@dataclasses.dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs to run one case (picklable: sent to pool and Dask workers).

    Attributes:
        task: the task name.
        case: the case.
        output_root: the batch's output folder (shared by all workers).
        write_roles: output roles written into the case folder as ``<role><extension>``.
        extension: image file extension of the outputs (``.nii.gz``, ``.nrrd``, ``.mha``).
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        threads: torch CPU threads per case (None: the task's default).
        model: a model bundle id or folder for tasks that use one (None: the task's default).
    """

    task: str
    case: Case
    output_root: str
    write_roles: tuple[str, ...]
    extension: str = ".nii.gz"
    device: str = "auto"
    threads: int | None = None
    model: str | None = None


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_case(job: CaseJob) -> CaseOutcome:
    """Run one case through :func:`SlicerMedFuse.api.run_task` and commit its folder.

    Args:
        job: the case and where its results go.

    Returns:
        ``ok`` with the task's summary values, or ``failed`` with the one-sentence reason when
        the case's input cannot be used (a :class:`MedFuseError`).

    Raises:
        Exception: anything that is not the case's fault (a bug, a lost file system); the batch
            retries the case and reports it failed when the retries are spent.
    """
    case, started = job.case, time.perf_counter()
    if case.problem:
        return CaseOutcome(case.case_id, "failed", error=case.problem)
    root = Path(job.output_root)
    final = root / case.case_id
    staging = root / STAGING_FOLDER / f"{case.case_id}-{uuid.uuid4().hex[:12]}"
    try:
        task = worker_task(job.task)
        resolved = task.spec.resolve_parameters(case.params)
        marker = fingerprint(job.task, case, resolved, job.write_roles, job.model)
        staging.mkdir(parents=True)
        outputs = {role: staging / f"{role}{job.extension}" for role in job.write_roles}
        result = run_task(
            task, case.inputs, outputs, case.params, device=job.device, threads=job.threads, model=job.model
        )
        summary = summary_values(result.report, task.summary(result.report))
        report = {**result.report, "outputs": {role: str(final / path.name) for role, path in outputs.items()}}
        write_json_atomic(report, staging / REPORT_FILE)
        seconds = round(time.perf_counter() - started, 3)
        marker.update(summary=summary, seconds=seconds, worker=_worker_name(), timings_s=report["timings_s"])
        write_json_atomic(marker, staging / DONE_MARKER)  # last: a folder with a marker is complete
        if not _already_committed(final, marker):
            replace_folder(staging, final)
        return CaseOutcome(case.case_id, "ok", "", summary, seconds, _worker_name(), str(final))
    except MedFuseError as error:
        return CaseOutcome(case.case_id, "failed", error.message, seconds=round(time.perf_counter() - started, 3))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _already_committed(final: Path, marker: dict) -> bool:
    """True when an earlier attempt of this very case (same fingerprint) already put its folder in place."""
    existing = read_marker(final)
    keys = ("task", "model", "parameters", "outputs", "inputs_sha256")
    return existing is not None and all(existing.get(k) == marker.get(k) for k in keys)

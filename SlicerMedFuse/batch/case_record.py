"""What a batch knows about one case: its outcome (a row of the results table) and its done marker.

A case is *finished* when its output folder holds a done marker (:data:`DONE_MARKER`) whose task,
model, parameters, written outputs and inputs' sha256 match what the batch would run now. The marker is
written inside the folder before the folder is renamed into place, so a folder that exists is
complete. ``--resume`` skips finished cases; every other case (failed, never run, or run on other
inputs or parameters) runs again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from SlicerMedFuse.batch.cohort import Case, input_file

__all__ = ["DONE_MARKER", "CaseOutcome", "fingerprint", "read_marker", "summary_values"]

#: File in each finished case folder: the fingerprint it was computed from, its summary and timings.
DONE_MARKER = "medfuse-case.json"

Status = Literal["ok", "failed", "skipped"]

#: How many levels of nested report values become columns of the results table.
SUMMARY_DEPTH = 3

# report sections that describe the run rather than the result
_NOT_SUMMARY = {"task", "medfuse_version", "device", "platform", "inputs", "parameters", "outputs", "timings_s"}


@dataclasses.dataclass
class CaseOutcome:
    """One row of the results table.

    Attributes:
        case_id: the case.
        status: ``ok`` (ran now), ``skipped`` (finished earlier, kept by ``--resume``) or ``failed``.
        error: the one-sentence reason for a failure, else empty.
        summary: the task's result values (volumes, scores, ...), flattened to ``name: number or text``.
        seconds: wall time of the case in its worker (s); 0 when skipped or failed before running.
        worker: ``host:pid`` of the process that ran it, else empty.
        output_folder: the case's output folder when it holds results, else empty.
    """

    case_id: str
    status: Status
    error: str = ""
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    worker: str = ""
    output_folder: str = ""


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:  # a DICOM folder: every file, by relative name and content
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def fingerprint(
    task: str, case: Case, resolved_params: Mapping[str, Any], write_roles: Sequence[str], model: str | None = None
) -> dict[str, Any]:
    """What makes a case's results what they are: task, model, parameters, written outputs, inputs' sha256.

    Args:
        task: the task name.
        case: the case (its input files are hashed).
        resolved_params: every parameter value, defaults filled in.
        write_roles: the output roles the batch writes.
        model: the model bundle id or folder asked for (None: the task's default).

    Returns:
        A JSON-ready dict; equal dicts mean the stored results are still the ones asked for.
    """
    return {
        "task": task,
        "model": model,
        "parameters": json.loads(json.dumps(dict(resolved_params), default=str)),
        "outputs": sorted(write_roles),
        "inputs_sha256": {role: _sha256_of(input_file(source)) for role, source in sorted(case.inputs.items())},
    }


def read_marker(case_folder: Path) -> dict[str, Any] | None:
    """The done marker of a case folder, or None when there is none or it cannot be read."""
    try:
        return json.loads((case_folder / DONE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def summary_values(report: Mapping[str, Any], task_summary: Any) -> dict[str, Any]:
    """The result values of a job report, flat: numbers and texts, nested ones named by their path.

    Args:
        report: the job report of :func:`SlicerMedFuse.api.run_task`.
        task_summary: what the task's ``summary(report)`` returned (None, a value or a dict).

    Returns:
        ``{"name": value}`` with nested keys joined by ``.`` up to :data:`SUMMARY_DEPTH` levels
        (e.g. ``classes.IPH.volume_ml``); lists and the run's own sections (device, inputs,
        parameters, timings) are left out.
    """
    sources = {k: v for k, v in report.items() if k not in _NOT_SUMMARY and k != "warnings"}
    if isinstance(task_summary, Mapping):
        sources.update(task_summary)
    elif task_summary is not None:
        sources["summary"] = task_summary
    flat: dict[str, Any] = {}
    _flatten(sources, "", SUMMARY_DEPTH, flat)
    return flat


def _flatten(values: Mapping[str, Any], prefix: str, depth: int, into: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, (bool, int, float, str)):
            into[f"{prefix}{key}"] = value
        elif isinstance(value, Mapping) and depth > 1:
            _flatten(value, f"{prefix}{key}.", depth - 1, into)

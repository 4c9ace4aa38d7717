"""The batch's results table: one row per case, written as CSV (spreadsheets) and JSON (scripts)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from SlicerMedFuse.batch.case_record import CaseOutcome
from SlicerMedFuse.io import atomic_path, write_json_atomic

__all__ = ["RESULTS_CSV", "RESULTS_JSON", "write_results"]

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"

_FIXED_COLUMNS = ("case_id", "status", "error", "seconds", "worker", "output_folder")


def write_results(folder: Path, outcomes: Sequence[CaseOutcome], header: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``results.csv`` and ``results.json`` into ``folder`` (each atomically).

    Args:
        folder: the batch's output folder.
        outcomes: one per case, in cohort order.
        header: batch-level facts for the JSON (task, counts, wall time, executor).

    Returns:
        The CSV and JSON paths. CSV columns: the fixed ones, then every summary value seen
        (sorted), empty where a case has none.
    """
    summary_columns = sorted({key for outcome in outcomes for key in outcome.summary})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*_FIXED_COLUMNS, *summary_columns])
    for outcome in outcomes:
        row = dataclasses.asdict(outcome)
        writer.writerow([row[c] for c in _FIXED_COLUMNS] + [outcome.summary.get(c, "") for c in summary_columns])
    csv_path = folder / RESULTS_CSV
    with atomic_path(csv_path) as staged:
        staged.write_text(text.getvalue(), encoding="utf-8")
    json_path = write_json_atomic({**header, "cases": [dataclasses.asdict(o) for o in outcomes]}, folder / RESULTS_JSON)
    return csv_path, json_path

"""The committed Slicer terminology file equals what the task contracts generate."""

from __future__ import annotations

import json
from pathlib import Path

from SlicerMedFuse.terminology import TERMINOLOGY_FILE_NAME, task_labels, terminology_context

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "Resources" / "Terminology" / TERMINOLOGY_FILE_NAME
REGENERATE = f"python -m SlicerMedFuse.terminology {COMMITTED.relative_to(REPO_ROOT).as_posix()}"


def test_committed_terminology_file_matches_the_task_labels() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; generate it with: {REGENERATE}"
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == terminology_context(task_labels()), (
        f"{COMMITTED.name} is out of date with the task labels; regenerate it with: {REGENERATE}"
    )


def test_every_task_label_code_is_in_the_committed_file() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    listed = {
        (category["CodeValue"], kind["CodeValue"])
        for category in committed["SegmentationCodes"]["Category"]
        for kind in category["Type"]
    }
    for label in task_labels():
        if label.terminology is not None:
            assert (label.terminology.category.value, label.terminology.type.value) in listed, label.name

"""Slicer's terminology context (``.term.json``) for every label the tasks declare.

Segments carry their codes in a ``TerminologyEntry`` tag that names the context
:data:`~SlicerMedFuse.contract.TERMINOLOGY_CONTEXT`; Slicer shows and edits those codes once
that context is loaded (the MedFuse modules load it at start-up). The file is generated from the task
specs (:mod:`SlicerMedFuse.specs`), so a label's code or colour is written once:

    python -m SlicerMedFuse.terminology Resources/Terminology/SegmentationCategoryType-MedFuse.term.json

A test fails when the committed file and the contracts disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from SlicerMedFuse.contract import TERMINOLOGY_CONTEXT, CodedConcept, Label
from SlicerMedFuse.specs import all_specs

__all__ = ["TERMINOLOGY_FILE_NAME", "terminology_context", "task_labels"]

TERMINOLOGY_FILE_NAME = "SegmentationCategoryType-MedFuse.term.json"
_SCHEMA = "https://raw.githubusercontent.com/qiicr/dcmqi/master/doc/schemas/segment-context-schema.json#"


def _code(concept: CodedConcept) -> dict[str, str]:
    return {"CodingSchemeDesignator": concept.scheme, "CodeValue": concept.value, "CodeMeaning": concept.meaning}


def task_labels() -> list[Label]:
    """Labels of every built-in and plugin task, in task order (read from the task specs: no torch)."""
    return [label for spec in all_specs() for label in spec.labels]


def terminology_context(labels: Iterable[Label]) -> dict[str, Any]:
    """The ``.term.json`` content: one category entry per category code, its types with their colours.

    Types that share a code (e.g. a generic "Hemorrhage" type used for two classes that differ by their
    anatomic region) appear once: Slicer tells them apart by the region in the segment's entry.
    """
    categories: dict[tuple[str, str], dict[str, Any]] = {}
    for label in labels:
        term = label.terminology
        if term is None:
            continue
        key = (term.category.scheme, term.category.value)
        category = categories.setdefault(key, {**_code(term.category), "showAnatomy": False, "Type": []})
        category["showAnatomy"] = category["showAnatomy"] or term.region is not None
        known = {(t["CodingSchemeDesignator"], t["CodeValue"]) for t in category["Type"]}
        if (term.type.scheme, term.type.value) in known:
            continue
        category["Type"].append({**_code(term.type), "recommendedDisplayRGBValue": list(label.color)})
    return {
        "SegmentationCategoryTypeContextName": TERMINOLOGY_CONTEXT,
        "@schema": _SCHEMA,
        "SegmentationCodes": {"Category": list(categories.values())},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m SlicerMedFuse.terminology OUTPUT.term.json", file=sys.stderr)
        return 2
    from SlicerMedFuse.io import write_json_atomic

    write_json_atomic(terminology_context(task_labels()), Path(args[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

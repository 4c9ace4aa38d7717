"""The ALN-metastasis dataset layout (what ``medfuse train aln-metastasis --data DIR`` reads) and its simulated instance.

Layout::

    DIR/cases.csv        one row per case (UTF-8, comma-separated, header row):
                         case, split, dce, t2w, mass, age, family_history, hormone_therapy, menopause,
                         tumour_size_mm, er_percent, pgr_percent, ki67_percent, her2, grade, aln
    DIR/dataset.json     optional: {"name": ..., "simulated": true|false, "description": ...}
    DIR/images/...       the image files the rows name (any format SimpleITK reads)

* ``case``: a unique id; ``split``: ``train`` or ``test`` (held out; empty means ``train``).
* ``dce`` (required), ``t2w`` and ``mass`` (optional, may be empty): image paths relative to DIR.
  ``mass`` is a label map of the lesion (non-zero inside) on any grid; without it the crop is
  centred on the DCE volume (see :mod:`SlicerMedFuse.breast.aln_input`).
* the ten clinical fields (:data:`~SlicerMedFuse.breast.aln_clinical.CLINICAL_FIELDS`, same
  names and ranges as the task's parameters) and ``aln``: 1 metastatic axillary nodes, 0 none.
* other columns are ignored (the simulator adds its hidden variables as ``sim_*``).

:func:`write_simulated_dataset` writes simulated cases (:mod:`SlicerMedFuse.breast.aln_simulator`)
in this layout with ``"simulated": true``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

from SlicerMedFuse.breast.aln_clinical import CLINICAL_FIELDS, check_clinical
from SlicerMedFuse.breast.aln_simulator import ALN_SIMULATION_NOTE, AlnRiskModel, simulated_study
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.io import write_image

__all__ = ["CASES_FILE", "AlnCaseFiles", "AlnDataset", "read_aln_dataset", "write_simulated_dataset"]

CASES_FILE = "cases.csv"
_IMAGE_COLUMNS = ("dce", "t2w", "mass")
_REQUIRED_COLUMNS = ("case", "dce", *(field.name for field in CLINICAL_FIELDS), "aln")


@dataclasses.dataclass(frozen=True)
class AlnCaseFiles:
    """One case of the dataset: image files by role (``dce``, ``t2w``), the mass label, clinical fields, label."""

    case_id: str
    images: dict[str, Path]
    mass: Path | None
    clinical: dict[str, float]
    positive: bool


@dataclasses.dataclass(frozen=True)
class AlnDataset:
    """A dataset folder as read by :func:`read_aln_dataset`."""

    root: Path
    name: str
    simulated: bool
    training: tuple[AlnCaseFiles, ...]
    test: tuple[AlnCaseFiles, ...]


def _case(row: dict[str, str], line: int, root: Path) -> tuple[str, AlnCaseFiles]:
    where = f"line {line} of {CASES_FILE}"
    case_id = (row.get("case") or "").strip()
    if not case_id:
        raise InputError(f"The 'case' column is empty on {where}; give every case an id.")
    split = (row.get("split") or "train").strip().lower() or "train"
    if split not in ("train", "test"):
        raise InputError(f"The split of case '{case_id}' ({where}) is {split!r}; use 'train' or 'test'.")
    files: dict[str, Path] = {}
    for column in _IMAGE_COLUMNS:
        text = (row.get(column) or "").strip()
        if not text:
            if column == "dce":
                raise InputError(f"Case '{case_id}' ({where}) has no DCE image; fill its 'dce' column.")
            continue
        path = root / text
        if not path.is_file():
            raise InputError(f"The {column} image of case '{case_id}' ({where}) does not exist: {path}.")
        files[column] = path
    try:
        clinical = check_clinical(row, where)
    except UsageError as error:
        raise InputError(error.message) from None
    label = (row.get("aln") or "").strip()
    if label not in ("0", "1"):
        raise InputError(f"The 'aln' label of case '{case_id}' ({where}) must be 0 or 1; got {label!r}.")
    mass = files.pop("mass", None)
    return split, AlnCaseFiles(case_id, files, mass, clinical, label == "1")


def read_aln_dataset(root: str | Path) -> AlnDataset:
    """Read ``root/cases.csv`` (and ``dataset.json``), checking every row and that its files exist.

    Raises:
        InputError: one sentence naming the file, line, case and column to fix.
    """
    root = Path(root)
    table = root / CASES_FILE
    if not table.is_file():
        raise InputError(f"{root} has no {CASES_FILE}; see docs/aln-metastasis.md for the dataset layout.")
    with table.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{table} lacks the column(s) {', '.join(missing)}; see docs/aln-metastasis.md.")
        splits: dict[str, list[AlnCaseFiles]] = {"train": [], "test": []}
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):
            split, case = _case(row, line, root)
            if case.case_id in seen:
                raise InputError(f"Case '{case.case_id}' appears twice in {table} (line {line}); ids must be unique.")
            seen.add(case.case_id)
            splits[split].append(case)
    metadata: dict[str, Any] = {}
    if (root / "dataset.json").is_file():
        metadata = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    if not splits["train"]:
        raise InputError(f"{table} has no training case (split 'train'); add some.")
    return AlnDataset(
        root,
        str(metadata.get("name", root.name)),
        bool(metadata.get("simulated", False)),
        tuple(splits["train"]),
        tuple(splits["test"]),
    )


def write_simulated_dataset(
    root: str | Path, training: int, test: int = 0, *, seed: int = 0, model: AlnRiskModel | None = None
) -> Path:
    """Simulate ``training`` + ``test`` cases (seeds ``seed``, ``seed + 1``, ...) into the layout above.

    Returns:
        ``root`` (created; existing files of the same cases are overwritten).
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    model = model or AlnRiskModel()
    rows = []
    for index in range(training + test):
        study = simulated_study(seed + index, model)
        case_id = f"aln_{seed + index:05d}"
        paths = {role: f"images/{case_id}_{role}.nii.gz" for role in _IMAGE_COLUMNS}
        write_image(study.images["dce"], root / paths["dce"])
        write_image(study.images["t2w"], root / paths["t2w"])
        write_image(study.mass, root / paths["mass"])
        rows.append({"case": case_id, "split": "train" if index < training else "test", **paths, **study.case.row()})
    with (root / CASES_FILE).open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]) if rows else list(_REQUIRED_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    metadata = {
        "name": "AlnPhantom",
        "description": f"Simulated breast MRI (DCE, T2W, mass label) with clinical fields and ALN status; "
        f"{ALN_SIMULATION_NOTE}.",
        "simulated": True,
        "risk_model": dataclasses.asdict(model),
        "first_seed": seed,
    }
    (root / "dataset.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return root

"""A cohort: the cases of a batch, read from a folder of case folders or from a CSV table.

Everything here is checked before any case runs, so a wrong command line (missing folder, unknown
role or column, no case matched) is one sentence and exit code 2 or 3, never a half-run batch.
A case whose own files are missing or ambiguous is not a batch error: it carries the sentence in
:attr:`Case.problem` and is reported failed while the other cases run.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.errors import InputError, UsageError

__all__ = ["CASE_ID_COLUMN", "Case", "cases_from_csv", "cases_from_folder", "input_file"]

#: The CSV column that names each case (also its output folder's name).
CASE_ID_COLUMN = "case_id"

# a case id becomes a folder name: no separators, no leading dot (hidden, or our staging folder)
_SAFE_CASE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


@dataclasses.dataclass(frozen=True)
class Case:
    """One case of a cohort.

    Attributes:
        case_id: the case's name; its outputs go to ``OUT/<case_id>/``.
        inputs: input path per role (a file, or a DICOM folder optionally with ``#SERIES_UID``).
        params: parameter values for this case, as given (strings from the command line or CSV).
        problem: why this case cannot run (one sentence), or None; such a case is reported failed.
    """

    case_id: str
    inputs: dict[str, str]
    params: dict[str, str]
    problem: str | None = None


def input_file(source: str) -> Path:
    """The file or folder an input string names (a ``FOLDER#SERIES_UID`` suffix removed)."""
    return Path(source.split("#", 1)[0]) if "#" in source and not Path(source).exists() else Path(source)


def _check_case_id(case_id: str, where: str) -> None:
    if not _SAFE_CASE_ID.match(case_id):
        raise UsageError(
            f"The case id {case_id!r} ({where}) cannot be a folder name; use letters, digits, '_', '-' and '.' only."
        )


def _check_params(spec: TaskSpec, params: Mapping[str, Any], where: str) -> None:
    try:
        spec.resolve_parameters(params)
    except UsageError as error:
        raise UsageError(f"{error.message.rstrip('.')} ({where}).") from None


def _check_shared_params(spec: TaskSpec, params: Mapping[str, Any]) -> None:
    """The ``--param`` values every case gets: checked, and none names a file every case would write."""
    _check_params(spec, params, "--param")
    written = [name for name in params if spec.parameter(name).file == "write"]
    if written:
        raise UsageError(
            f"--param {written[0]} would make every case write the same file; give it per case in the CSV, "
            "or use the task's outputs, which land in each case's folder."
        )


def cases_from_folder(
    folder: str | Path, patterns: Mapping[str, str], spec: TaskSpec, params: Mapping[str, str]
) -> list[Case]:
    """One case per sub-folder of ``folder``; each input role is the one file matching its pattern.

    Args:
        folder: the cohort folder; each non-hidden sub-folder is a case named after it.
        patterns: glob pattern per input role, relative to a case folder (e.g. ``{"ct": "*.nii.gz"}``).
        spec: the task's declaration (roles and parameters are checked against it).
        params: parameter values for every case (command-line strings).

    Returns:
        The cases sorted by id; a case whose pattern matches no file or several files carries a problem.

    Raises:
        UsageError: the folder is missing, a role is unknown or a required one has no pattern.
        InputError: no case folder matched any pattern.
    """
    root = Path(folder).absolute()  # workers elsewhere (Dask) share paths, not this working folder
    if not root.is_dir():
        raise UsageError(f"The cohort folder {root} does not exist; give a folder with one sub-folder per case.")
    spec.check_roles(list(patterns))
    _check_shared_params(spec, params)
    cases = []
    for case_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        _check_case_id(case_dir.name, f"folder {case_dir}")
        inputs, problems = {}, []
        for role, pattern in patterns.items():
            matches = sorted(case_dir.glob(pattern))
            if len(matches) == 1:
                inputs[role] = str(matches[0])
            elif not matches and spec.input(role).required:
                problems.append(f"no file matches {role}='{pattern}'")
            elif len(matches) > 1:
                problems.append(f"{len(matches)} files match {role}='{pattern}'")
        problem = None
        if problems:
            problem = f"In case folder {case_dir}, {'; '.join(problems)}; make each pattern match exactly one file."
        cases.append(Case(case_dir.name, inputs, dict(params), problem))
    if not any(case.problem is None for case in cases):
        shown = ", ".join(f"{role}='{pattern}'" for role, pattern in patterns.items())
        raise InputError(f"No case folder in {root} has files matching {shown}; check the folder and the patterns.")
    return cases


def cases_from_csv(table: str | Path, spec: TaskSpec, params: Mapping[str, str]) -> list[Case]:
    """One case per row of a CSV table: ``case_id``, one column per input role, optional parameter columns.

    Relative paths are taken from the table's own folder; an empty cell leaves an optional input
    out or a parameter at its ``--param`` / default value.

    Args:
        table: the CSV file (UTF-8, a header row).
        spec: the task's declaration.
        params: parameter values for every case; a parameter column overrides them per case.

    Returns:
        The cases in the table's order; a case whose input file is missing carries a problem.

    Raises:
        UsageError: the file is missing, a column is neither an input role nor a parameter, a
            required role has no column, a case id is repeated or unusable, or a value is invalid.
        InputError: the table has no rows.
    """
    path = Path(table).absolute()
    if not path.is_file():
        raise UsageError(f"The cohort table {path} does not exist; give a CSV with a '{CASE_ID_COLUMN}' column.")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if CASE_ID_COLUMN not in columns:
        raise UsageError(f"The cohort table {path} has no '{CASE_ID_COLUMN}' column; add one naming each case.")
    roles = {i.role for i in spec.inputs}
    parameters = {p.name for p in spec.parameters}
    for column in columns:
        if column != CASE_ID_COLUMN and column not in roles | parameters:
            raise UsageError(
                f"Column '{column}' of {path} is neither an input of task '{spec.name}' ({', '.join(sorted(roles))}) "
                f"nor a parameter; rename or remove it."
            )
    spec.check_roles([c for c in columns if c in roles])
    _check_shared_params(spec, params)
    cases, seen = [], set()
    for line, row in enumerate(rows, start=2):
        case_id = row[CASE_ID_COLUMN]
        _check_case_id(case_id, f"{path} line {line}")
        if case_id in seen:
            raise UsageError(f"Case '{case_id}' appears twice in {path} (line {line}); give each case one row.")
        seen.add(case_id)
        case_params = {**params, **{c: row[c] for c in columns if c in parameters and row[c]}}
        _check_params(spec, case_params, f"case '{case_id}', {path} line {line}")
        inputs = {c: str(path.parent / row[c]) for c in columns if c in roles and row[c]}
        missing = [role for role in (i.role for i in spec.inputs if i.required) if role not in inputs]
        absent = [role for role, source in inputs.items() if not input_file(source).exists()]
        problem = None
        if missing:
            problem = f"Case '{case_id}' has no {missing[0]} path in {path} line {line}; fill in that cell."
        elif absent:
            problem = f"The {absent[0]} file of case '{case_id}' does not exist ({inputs[absent[0]]}); fix its path."
        cases.append(Case(case_id, inputs, case_params, problem))
    if not cases:
        raise InputError(f"The cohort table {path} has no rows; add one row per case.")
    return cases

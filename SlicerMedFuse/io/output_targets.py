"""Checks on where a job will write, run before any work: never onto an input, never into a dead end.

A job's results are worth minutes of computation and its inputs are the user's data, so every
target file (the outputs, the report, files named by parameters such as registration's
``transform_file``) is checked before anything is read or computed:

* it is not one of the inputs (same resolved path, or the same file through a hard link), nor a
  file inside an input DICOM folder, and no two targets are the same file;
* its extension is one the writer supports (the message names the user's path);
* its folder exists, is a folder and is writable (a read-only folder is a
  :class:`~SlicerMedFuse.errors.ResourceError`, exit 5);
* an image output in NIfTI does not land on a sheared (non-orthogonal) grid, which NIfTI cannot
  store: ITK would silently coerce the direction and move the anatomy (checked once the reference
  input is read, still before the task runs; :func:`check_nifti_direction`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import ResourceError, UsageError

__all__ = [
    "NIFTI_EXTENSIONS",
    "OutputTarget",
    "check_nifti_direction",
    "check_output_targets",
    "is_orthogonal",
]

NIFTI_EXTENSIONS = (".nii", ".nii.gz")

#: Largest |D^T D - I| entry of a direction matrix still taken as orthogonal (float rounding in headers).
_ORTHOGONALITY_TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class OutputTarget:
    """One file a job will write.

    Attributes:
        what: how the user named it, for messages (``"output 'volume'"``, ``"--report"``).
        path: the path as the user gave it.
        extensions: the file endings its writer supports (empty: any, e.g. a JSON report).
    """

    what: str
    path: Path
    extensions: tuple[str, ...] = ()


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` are one file: equal resolved paths, or one inode (hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # either does not exist (yet): not the same file
        return False


def _input_files(inputs: Mapping[str, Path]) -> list[tuple[str, Path]]:
    """(description, file) for each input file, and each file of each input folder (a DICOM series)."""
    files = []
    for what, path in inputs.items():
        if path.is_dir():
            files += [(f"{what} (in its folder {path})", child) for child in path.iterdir() if child.is_file()]
        else:
            files.append((what, path))
    return files


def _check_not_an_input(target: OutputTarget, inputs: list[tuple[str, Path]]) -> None:
    for what, source in inputs:
        if _same_file(target.path, source):
            raise UsageError(
                f"The {target.what} path '{target.path}' is the {what} file itself, which would be overwritten; "
                "choose another output path."
            )


def _check_extension(target: OutputTarget) -> None:
    name = target.path.name.lower()
    if target.extensions and not name.endswith(target.extensions):
        raise UsageError(
            f"Cannot write the {target.what} to '{target.path}': the extension is not supported; "
            f"use one of {', '.join(target.extensions)}."
        )


def _can_create_in(folder: Path) -> bool:
    """Whether a staging folder can be made in ``folder`` (a real probe: permission bits do not bind root,
    and read-only mounts or full quotas show only when one tries)."""
    try:
        probe = tempfile.mkdtemp(prefix=".medfuse-probe-", dir=folder)
    except OSError:
        return False
    os.rmdir(probe)
    return True


def _check_folder(target: OutputTarget) -> None:
    folder = target.path.parent
    if target.path.is_dir():
        raise UsageError(f"The {target.what} path '{target.path}' is a folder; give a file name inside it.")
    if not folder.exists():
        raise UsageError(f"The folder for the {target.what} does not exist: {folder}; create it first.")
    if not folder.is_dir():
        raise UsageError(f"The folder for the {target.what} ('{folder}') is a file; choose a path in a folder.")
    if not _can_create_in(folder):
        raise ResourceError(
            f"Cannot write the {target.what} to '{target.path}': the folder {folder} is not writable; "
            "choose a writable folder."
        )


def check_output_targets(targets: Iterable[OutputTarget], inputs: Mapping[str, str | os.PathLike[str]]) -> None:
    """Refuse, before any work, a job whose outputs would overwrite an input or cannot be written.

    Args:
        targets: every file the job will write (outputs, report, files named by parameters).
        inputs: description -> path of each input given as a file or folder (e.g.
            ``{"input 'volume'": "ct.nii.gz"}``); a ``folder#SERIES_UID`` path counts as its folder.

    Raises:
        UsageError: a target is an input, two targets are one file, a target is a folder, its
            folder is missing, or its extension is not supported (exit 2).
        ResourceError: a target's folder is not writable (exit 5).
    """
    from SlicerMedFuse.io.image_io import split_series_path  # image_io imports this module's checks

    targets = list(targets)
    sources = _input_files({what: split_series_path(path)[0] for what, path in inputs.items()})
    for index, target in enumerate(targets):
        _check_not_an_input(target, sources)
        for other in targets[:index]:
            if _same_file(target.path, other.path):
                raise UsageError(
                    f"The {target.what} and the {other.what} are the same file '{target.path}'; give each its own path."
                )
    for target in targets:
        _check_extension(target)
        _check_folder(target)


def is_orthogonal(image: sitk.Image) -> bool:
    """Whether the image's direction cosines are orthonormal (no shear), within header rounding."""
    dimension = image.GetDimension()
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
    return bool(np.max(np.abs(direction.T @ direction - np.eye(dimension))) <= _ORTHOGONALITY_TOLERANCE)


def check_nifti_direction(image: sitk.Image, path: str | os.PathLike[str], what: str) -> None:
    """Refuse to write a sheared image as NIfTI, whose writer would move the anatomy without a word.

    Args:
        image: the image to write, or the input whose grid the output will have.
        path: the output path (only NIfTI paths are checked).
        what: what the image is, for the message (e.g. ``"input 'volume'"``).

    Raises:
        UsageError: ``path`` is NIfTI and ``image``'s direction is not orthogonal (exit 2).
    """
    if not Path(path).name.lower().endswith(NIFTI_EXTENSIONS) or is_orthogonal(image):
        return
    raise UsageError(
        f"Cannot write '{path}' as NIfTI: the {what} has a sheared (non-orthogonal) grid, which NIfTI cannot "
        "store without moving the anatomy; write .nrrd or .mha instead."
    )

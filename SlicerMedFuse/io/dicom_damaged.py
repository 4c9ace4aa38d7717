"""DICOM files that GDCM leaves out of every series without a word, and ITK's native warnings.

GDCM's series listing skips a file whose header it cannot parse (a copy cut short, a file damaged
on disk); the series then simply has a gap, which the reader fills by interpolation. The user must
learn which file that was, so :func:`damaged_dicom_files` finds the files of a folder that look
like DICOM (the ``DICM`` magic, or a ``.dcm``/``.dicom`` name) but are in no series and cannot be
parsed. :func:`quiet_itk` silences ITK's C++ warnings (e.g. GDCM's "No Series were found"),
whose cases the backend words itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import SimpleITK as sitk

__all__ = ["damaged_dicom_files", "quiet_itk"]

_DICOM_SUFFIXES = (".dcm", ".dicom")
_PREAMBLE_BYTES = 128


@contextlib.contextmanager
def quiet_itk() -> Iterator[None]:
    """Turn off ITK's global warning display (C++ text on stderr) for the block, then restore it."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() in _DICOM_SUFFIXES:
        return True
    try:
        with path.open("rb") as stream:
            stream.seek(_PREAMBLE_BYTES)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def _parses(path: Path) -> bool:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        return False
    return True


def damaged_dicom_files(folder: Path, listed: Iterable[str]) -> list[Path]:
    """The files of ``folder`` that look like DICOM but are in no series because they cannot be parsed.

    Args:
        folder: a DICOM folder (not searched recursively).
        listed: the files GDCM put in some series of ``folder``.

    Returns:
        The damaged files, sorted by name (DICOMDIR and hidden files are never counted).
    """
    known = {Path(file).name for file in listed}
    damaged = []
    for child in sorted(folder.iterdir()):
        if child.name in known or child.name.startswith(".") or child.name.upper() == "DICOMDIR":
            continue
        if child.is_file() and _looks_like_dicom(child) and not _parses(child):
            damaged.append(child)
    return damaged

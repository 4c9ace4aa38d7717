"""Load the MedFuse terminology context into Slicer's Terminologies module.

MedFuse segments carry their DICOM/SNOMED codes in a ``TerminologyEntry`` tag that names the context
``Segmentation category and type - MedFuse``; Slicer shows those codes (and lets the user pick them
when adding a segment) once that context is loaded. The context file is generated from the task
contracts (``python -m SlicerMedFuse.terminology``) and committed as
``Resources/Terminology/SegmentationCategoryType-MedFuse.term.json``; the extension build installs
it beside this package.

Headless (slicer-core, no ``slicer.modules.terminologies``) loading is a no-op.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["TERMINOLOGY_FILE_NAME", "loadTerminology", "terminologyFilePath"]

#: The file name, as ``SlicerMedFuse.terminology.TERMINOLOGY_FILE_NAME`` writes it.
TERMINOLOGY_FILE_NAME = "SegmentationCategoryType-MedFuse.term.json"

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Where the file is looked for: installed beside this package, then in the source tree.
SEARCH_PATHS: tuple[Path, ...] = (
    _PACKAGE_DIR / TERMINOLOGY_FILE_NAME,
    _PACKAGE_DIR.parents[2] / "Resources" / "Terminology" / TERMINOLOGY_FILE_NAME,
)

_log = logging.getLogger(__name__)


def terminologyFilePath() -> Path | None:
    """The MedFuse ``.term.json`` file: installed beside MedFuseLib, else in the source tree; None if absent."""
    for path in SEARCH_PATHS:
        if path.is_file():
            return path
    return None


def _applicationTerminologiesLogic() -> Any | None:
    slicer = sys.modules.get("slicer")
    terminologies = getattr(getattr(slicer, "modules", None), "terminologies", None)
    if terminologies is None:
        return None
    try:
        return terminologies.logic()
    except Exception:  # a module shell without logic (application shutting down)
        return None


def loadTerminology(terminologiesLogic: Any | None = None) -> bool:
    """Load (or reload: Slicer replaces a context of the same name) the MedFuse terminology context.

    Args:
        terminologiesLogic: a ``vtkSlicerTerminologiesModuleLogic``; default the application's
            (``slicer.modules.terminologies.logic()``), when there is one.

    Returns:
        True when the context was loaded; False headless, or when the file is missing or unreadable
        (a warning is logged: segments keep their codes, Slicer just cannot list them).
    """
    logic = terminologiesLogic if terminologiesLogic is not None else _applicationTerminologiesLogic()
    if logic is None:
        return False
    path = terminologyFilePath()
    if path is None:
        _log.warning("The MedFuse terminology file %s was not found; reinstall the extension.", TERMINOLOGY_FILE_NAME)
        return False
    loaded = logic.LoadTerminologyFromFile(str(path))  # the context name (Slicer >= 5.7) or a bool
    if not loaded:
        _log.warning("Slicer could not load the MedFuse terminology file %s.", path)
        return False
    return True

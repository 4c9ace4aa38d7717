"""The Slicer version check every MedFuse module file runs before it imports its panel.

MedFuse needs Slicer 5.10 or later (Python 3.12; torch 2.13 needs Python >= 3.10). Slicer 5.6 and
5.8 ship Python 3.9.10: there a module file still loads, and its panel shows one sentence instead
of a traceback. So this file, like the module files, parses and runs on Python 3.9: no ``X | None``
evaluated at runtime, no ``match``, no ``zip(strict=...)``; its annotations stay strings.
"""

from __future__ import annotations

import sys

__all__ = ["MINIMUM_PYTHON", "MINIMUM_SLICER", "TooOldSlicerWidget", "slicerTooOldMessage"]

#: The first Slicer release MedFuse supports, and the Python it ships.
MINIMUM_SLICER = "5.10"
MINIMUM_PYTHON = (3, 10)


def _slicerVersion() -> str:
    """The running Slicer's version ("5.6.2"), or "?" outside the application."""
    try:
        import slicer

        return str(slicer.app.applicationVersion)
    except Exception:  # no application (tests, PythonSlicer): the Python version still decides
        return "?"


def slicerTooOldMessage() -> str | None:
    """One sentence when this Slicer is too old for MedFuse, None when it is recent enough."""
    if tuple(sys.version_info[:2]) >= MINIMUM_PYTHON:
        return None
    python = "{}.{}".format(*sys.version_info[:2])
    return (
        f"MedFuse needs Slicer {MINIMUM_SLICER} or later; this is Slicer {_slicerVersion()} with Python {python}: "
        "install a current Slicer from download.slicer.org."
    )


def _widgetBase():
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget

    return ScriptedLoadableModuleWidget


class TooOldSlicerWidget(_widgetBase()):
    """The panel a module shows on a Slicer older than :data:`MINIMUM_SLICER`: the sentence, nothing else.

    A module file subclasses it as ``<Module>Widget`` (Slicer finds the widget by that name).
    """

    def setup(self) -> None:
        _widgetBase().setup(self)
        import qt

        label = qt.QLabel(slicerTooOldMessage() or "")
        label.wordWrap = True
        self.layout.addWidget(label)
        self.layout.addStretch(1)

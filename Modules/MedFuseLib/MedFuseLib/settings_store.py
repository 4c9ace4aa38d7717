"""Where MedFuse keeps the user's choices: Slicer's settings inside the application, process memory elsewhere.

Inside Slicer this is ``qt.QSettings()`` (the user's ``Slicer.ini``; never a scene file). Headless
(slicer-core, a plain venv) there is no Slicer settings file, so the choices live in one
:class:`MemorySettings` for the life of the process. Tests pass their own store.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

__all__ = ["MemorySettings", "SettingsStore", "defaultSettingsStore"]


class SettingsStore(Protocol):
    """The part of ``qt.QSettings`` MedFuse uses."""

    def value(self, key: str, default: Any = None) -> Any: ...

    def setValue(self, key: str, value: Any) -> None: ...


class MemorySettings:
    """A :class:`SettingsStore` in memory (headless runs and tests)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def value(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def setValue(self, key: str, value: Any) -> None:
        self.values[key] = value


_PROCESS_SETTINGS = MemorySettings()


def defaultSettingsStore() -> SettingsStore:
    """``qt.QSettings()`` inside the Slicer application, else this process's :class:`MemorySettings`."""
    if getattr(sys.modules.get("slicer"), "app", None) is None:
        return _PROCESS_SETTINGS
    import qt  # only inside the application

    return qt.QSettings()

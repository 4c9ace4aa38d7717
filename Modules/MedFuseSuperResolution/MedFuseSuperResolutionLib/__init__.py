"""The MedFuse Super-Resolution module's logic, importable without Qt (Slicer console, scripts, tests)."""

from MedFuseSuperResolutionLib.Logic import (
    DEFAULT_METHOD,
    DEFAULT_QUALITY,
    DEVICE_CHOICES,
    TASK_NAME,
    SuperResolutionLogic,
    methodChoices,
    methodNote,
    parameterRange,
    taskSpec,
)

__all__ = [
    "DEFAULT_METHOD",
    "DEFAULT_QUALITY",
    "DEVICE_CHOICES",
    "TASK_NAME",
    "SuperResolutionLogic",
    "methodChoices",
    "methodNote",
    "parameterRange",
    "taskSpec",
]

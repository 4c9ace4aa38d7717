"""The MedFuse Super-Resolution module's logic, importable without Qt (Slicer console, scripts, tests)."""

from MedFuseSuperResolutionLib.Logic import (
    DEVICE_CHOICES,
    TASK_NAME,
    SuperResolutionLogic,
    methodChoices,
    methodNote,
    parameterRange,
    taskSpec,
)

__all__ = [
    "DEVICE_CHOICES",
    "TASK_NAME",
    "SuperResolutionLogic",
    "methodChoices",
    "methodNote",
    "parameterRange",
    "taskSpec",
]

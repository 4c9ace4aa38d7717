"""The MedFuse Hemorrhage module's logic, importable without Qt (Slicer console, scripts, tests)."""

from MedFuseHemorrhageLib.Logic import (
    DEVICE_CHOICES,
    DISPLAY_WINDOWS,
    EDH_NOTE,
    SIMULATED_TRAINING_WARNING,
    TASK_NAME,
    HemorrhageLogic,
    parameterRange,
    taskSpec,
)

__all__ = [
    "DEVICE_CHOICES",
    "DISPLAY_WINDOWS",
    "EDH_NOTE",
    "SIMULATED_TRAINING_WARNING",
    "TASK_NAME",
    "HemorrhageLogic",
    "parameterRange",
    "taskSpec",
]

"""The MedFuse Registration module's logic, importable without Qt (Slicer console, scripts, tests)."""

from MedFuseRegistrationLib.Logic import (
    DEVICE_CHOICES,
    PANEL_PARAMETERS,
    PRESETS,
    TASK_NAME,
    RegistrationJob,
    RegistrationLogic,
    RegistrationOutputs,
    builtinPresetValues,
    defaultPresetDirectory,
    panelValues,
    parameterChoices,
    parameterRange,
    taskSpec,
)
from MedFuseRegistrationLib.UserPresets import PRESET_FOLDER_NAME, UserPresetStore

__all__ = [
    "DEVICE_CHOICES",
    "PANEL_PARAMETERS",
    "PRESETS",
    "PRESET_FOLDER_NAME",
    "TASK_NAME",
    "RegistrationJob",
    "RegistrationLogic",
    "RegistrationOutputs",
    "UserPresetStore",
    "builtinPresetValues",
    "defaultPresetDirectory",
    "panelValues",
    "parameterChoices",
    "parameterRange",
    "taskSpec",
]

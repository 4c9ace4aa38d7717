"""The MedFuse Breast module's logic, importable without Qt (Slicer console, scripts, tests)."""

from MedFuseLib.task_models import TaskModels

from MedFuseBreastLib.Aln import (
    ALN_TASK,
    CLINICAL_FIELDS,
    PANEL_DEFAULTS,
    AlnResult,
    alnParameters,
    alnResult,
    panelFieldName,
)
from MedFuseBreastLib.JobChain import ChainStep, ImageInputJob, JobChain
from MedFuseBreastLib.Logic import (
    DEVICE_CHOICES,
    SIMULATED_TRAINING_WARNING,
    TASK_NAME,
    BreastLogic,
    BreastMassJob,
    BreastResult,
    parameterRange,
    taskSpec,
)
from MedFuseBreastLib.Roles import ROLE_TITLES, ROLES, assignRoles, roleOfDescription

__all__ = [
    "ALN_TASK",
    "CLINICAL_FIELDS",
    "DEVICE_CHOICES",
    "PANEL_DEFAULTS",
    "ROLES",
    "ROLE_TITLES",
    "SIMULATED_TRAINING_WARNING",
    "TASK_NAME",
    "AlnResult",
    "BreastLogic",
    "BreastMassJob",
    "BreastResult",
    "ChainStep",
    "ImageInputJob",
    "JobChain",
    "TaskModels",
    "alnParameters",
    "alnResult",
    "assignRoles",
    "panelFieldName",
    "parameterRange",
    "roleOfDescription",
    "taskSpec",
]

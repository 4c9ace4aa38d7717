"""The backend's one door for the Slicer side: everything a MedFuse module may import, torch-free.

The Slicer modules (``Modules/``) import from the backend only this module: task declarations
(:class:`TaskSpec` and its parts), errors, labels, the model store's listing, grid geometry and the
torch-free input checks a panel runs before it starts a job. It must import with only what a fresh
Slicer ships (numpy, scipy, SimpleITK, pydicom, pillow): no torch, monai, jsonschema or safetensors,
because the modules load before the first-use installer has run. ``Testing`` enforces both rules.

Usage on the Slicer side::

    from SlicerMedFuse import facade as backend

    spec = backend.task_spec("superres")
    spec.parameter("method").choice_label("sr4zct")   # "SR4ZCT (self-supervised network)"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SlicerMedFuse import specs
from SlicerMedFuse.breast.aln_clinical import CLINICAL_FIELDS, check_clinical
from SlicerMedFuse.breast.labels import MASS_LABELS
from SlicerMedFuse.breast.phantom import PhantomConfig, generate_phantom, study_geometry
from SlicerMedFuse.breast.provenance import PHANTOM_DATA_NOTE
from SlicerMedFuse.breast.sequences import check_mr_role
from SlicerMedFuse.contract import (
    CodedConcept,
    InputSpec,
    Label,
    OutputSpec,
    ParameterSpec,
    TaskSpec,
    Terminology,
)
from SlicerMedFuse.device import DEVICE_CHOICES
from SlicerMedFuse.errors import ExitCode, InputError, MedFuseError, ModelError, UsageError
from SlicerMedFuse.geometry import ImageGeometry, resample_to_reference, same_grid
from SlicerMedFuse.geometry.coordinates import (
    ijk_to_ras_matrix,
    lps_to_ras_points,
    lps_to_ras_vectors,
    ras_to_lps_points,
    ras_to_lps_vectors,
)
from SlicerMedFuse.hemorrhage.labels import HemorrhageClass
from SlicerMedFuse.hemorrhage.preprocessing import check_ct_intensities
from SlicerMedFuse.hemorrhage.provenance import SIMULATED_DATA_NOTE
from SlicerMedFuse.io import write_json_atomic
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import MANIFEST_FILE, BundleManifest, version_key
from SlicerMedFuse.models.store import InstalledModel, ModelStore, default_home
from SlicerMedFuse.registration.presets import PARAMETERS as REGISTRATION_PARAMETERS
from SlicerMedFuse.registration.presets import PRESET_DIR as REGISTRATION_PRESET_DIR
from SlicerMedFuse.registration.presets import PRESETS as REGISTRATION_PRESETS
from SlicerMedFuse.registration.presets import load_preset, settings_from_parameters
from SlicerMedFuse.serve_client import RemoteError, ServerClient, is_loopback
from SlicerMedFuse.specs.hemorrhage import THICK_SLICE_MM
from SlicerMedFuse.superres.slice_geometry import VolumeGrid, detect_slice_geometry

__all__ = [
    "CLINICAL_FIELDS",
    "DEVICE_CHOICES",
    "MANIFEST_FILE",
    "MASS_LABELS",
    "PHANTOM_DATA_NOTE",
    "REGISTRATION_PARAMETERS",
    "REGISTRATION_PRESETS",
    "REGISTRATION_PRESET_DIR",
    "SIMULATED_DATA_NOTE",
    "THICK_SLICE_MM",
    "BundleManifest",
    "CodedConcept",
    "ExitCode",
    "HemorrhageClass",
    "ImageGeometry",
    "InputError",
    "InputSpec",
    "InstalledModel",
    "Label",
    "MedFuseError",
    "ModelError",
    "ModelStore",
    "OutputSpec",
    "ParameterSpec",
    "PhantomConfig",
    "RemoteError",
    "ServerClient",
    "TaskSpec",
    "Terminology",
    "UsageError",
    "VolumeGrid",
    "check_clinical",
    "check_ct_intensities",
    "check_mr_role",
    "default_home",
    "default_model",
    "detect_slice_geometry",
    "generate_phantom",
    "ijk_to_ras_matrix",
    "load_manifest",
    "load_preset",
    "lps_to_ras_points",
    "lps_to_ras_vectors",
    "precheck_grids",
    "ras_to_lps_points",
    "ras_to_lps_vectors",
    "resample_to_reference",
    "same_grid",
    "settings_from_parameters",
    "study_geometry",
    "task_names",
    "task_spec",
    "version_key",
    "write_json_atomic",
    "is_loopback",
]


def task_names() -> list[str]:
    """The names of the available tasks: the built-in ones in their order, then those plugins contribute."""
    return specs.task_names()


def task_spec(name: str) -> TaskSpec:
    """The declaration of task ``name`` (inputs, outputs, labels, parameters), without importing torch.

    Raises:
        UsageError: no such task.
    """
    return specs.task_spec(name)


def default_model(name: str) -> str | None:
    """The model bundle id task ``name`` uses when none is chosen, or None for a task without a model."""
    return specs.task_spec(name).default_model


def precheck_grids(name: str, grids: Mapping[str, VolumeGrid], params: Mapping[str, Any]) -> None:
    """The task's checks that need only the inputs' grids (size, spacing, thickness), not their voxels.

    A panel runs them before it exports anything, so a doomed job never starts.

    Args:
        name: task name.
        grids: input role -> grid of the node that will be sent.
        params: the task parameters, resolved (defaults filled in).

    Raises:
        InputError: one sentence naming the problem and the fix.
    """
    specs.precheck_grids(name, grids, params)

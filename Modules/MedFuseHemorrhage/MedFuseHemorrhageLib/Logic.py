"""Intracranial hemorrhage segmentation of a head CT node, computed by the backend's ``hemorrhage`` task.

The flow is: check the CT here (one clear sentence per problem) and pick a model bundle from the
user's model store -> start the backend out of process (:class:`MedFuseLib.task_job.BackendTaskJob`)
-> poll it -> put the label map into a segmentation with the five BHSD segments (named, coloured,
coded, under the CT's study; empty classes included so they can be painted) and fill a table with
each class's volume (mL), components and slice range from the job report; the report's acquisition
check becomes one line for the panel (:meth:`HemorrhageLogic.acquisitionLine`). The CT node, its
display included, is never changed: a brain or blood window is applied only when the user asks
(:meth:`HemorrhageLogic.applyDisplayWindow`, the panel's "Show window" button). What every task
shares (input checks, parameters, models, start / finish / cancel, async runs) is
:class:`MedFuseLib.task_logic.TaskLogic`. Only MRML and VTK are used, so this runs headless on
slicer-core and inside the Slicer application alike.

From Slicer's Python console::

    from MedFuseHemorrhageLib import HemorrhageLogic
    segmentation, table = HemorrhageLogic().process(slicer.util.getNode("CTHead"))
    print(slicer.util.dataframeFromTable(table))   # class, volume (mL), components, slices

``model`` is an installed bundle id (``id`` or ``id@version``, see ``medfuse models list``) or a
bundle folder; without it the installed demo model is used.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from MedFuseLib import mrml_bridge
from MedFuseLib.runner import ProcessRunner
from MedFuseLib.task_job import BackendTaskJob
from MedFuseLib.task_logic import TaskLogic
from MedFuseLib.task_models import TaskModels
from MedFuseLib.terminology import loadTerminology

from SlicerMedFuse.facade import (
    DEVICE_CHOICES,
    SIMULATED_DATA_NOTE,
    THICK_SLICE_MM,
    BundleManifest,
    HemorrhageClass,
    InstalledModel,
    Label,
    MedFuseError,
    TaskSpec,
    check_ct_intensities,
    load_manifest,
)

if TYPE_CHECKING:
    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode

__all__ = [
    "DEVICE_CHOICES",
    "DISPLAY_WINDOWS",
    "EDH_NOTE",
    "HemorrhageLogic",
    "SIMULATED_TRAINING_WARNING",
    "TASK_NAME",
    "parameterRange",
    "taskSpec",
]

TASK_NAME = "hemorrhage"
INPUT_ROLE = "ct"
OUTPUT_ROLE = "labels"

#: Display windows the user can apply to the CT: name -> (width, level) in HU.
DISPLAY_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (80.0, 40.0),  # the radiologist's brain window
    "blood": (160.0, 40.0),  # wider; the HU range the BHSD model sees ([-40, 120])
}
#: Voxels read for the intensity check (a regular subsample of larger volumes).
INTENSITY_SAMPLE_VOXELS = 1_000_000

SIMULATED_TRAINING_WARNING = f"Demo model: {SIMULATED_DATA_NOTE}; review every segment."
EDH_NOTE = (
    "Epidural hemorrhage (EDH) is rare and the weakest class in the BHSD benchmark: "
    "review the EDH segment with particular care."
)

#: Columns of the volumes table: (name, title shown in the header, unit, description).
TABLE_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("Hemorrhage", "Hemorrhage", "", "Hemorrhage class (segment name)."),
    ("Class", "Class", "", "BHSD abbreviation."),
    ("Volume", "Volume (mL)", "mL", "Segmented volume of the class."),
    ("Components", "Components", "", "Connected components of the class after small-component removal."),
    ("First slice", "First slice", "", "First slice index k (0-based) holding the class; -1 when it is empty."),
    ("Last slice", "Last slice", "", "Last slice index k (0-based) holding the class; -1 when it is empty."),
)

_log = logging.getLogger(__name__)


class HemorrhageModels(TaskModels):
    """The hemorrhage task's model bundles, with the hemorrhage panel's wording."""

    NO_MODEL_MESSAGE = (
        "No hemorrhage model is installed: install one with 'medfuse models install {suggestion}' "
        "or drop a model bundle folder into {modelsDir}."
    )
    WRONG_TASK_MESSAGE = "The model '{name}' is for the '{modelTask}' task, not hemorrhage; choose a hemorrhage model."


class HemorrhageLogic(TaskLogic):
    """Runs the backend ``hemorrhage`` task on a CT volume node.

    Args: those of :class:`MedFuseLib.task_logic.TaskLogic` (runner, python, store, scheduler).
    """

    TASK_NAME = TASK_NAME
    FINISH_OPTIONS = ("segmentationNode", "tableNode")
    MODELS_CLASS = HemorrhageModels

    # --- models (see MedFuseLib.task_models.TaskModels) --------------------------------------------
    def installedModels(self) -> list[InstalledModel]:
        """Bundles for the hemorrhage task, sorted by id then version: the user's store, then those
        shipped with SlicerMedFuse (``bundled`` True) for ids the store lacks."""
        return self.models.installed()

    modelReference = staticmethod(TaskModels.reference)
    describeModel = staticmethod(TaskModels.describe)

    @staticmethod
    def modelWarnings(manifest: BundleManifest) -> list[str]:
        """Warnings to show beside a model: the demo-model warning when it was trained on simulated data."""
        return [SIMULATED_TRAINING_WARNING] if manifest.simulated_training else []

    # --- input ------------------------------------------------------------------------------------
    def checkInput(self, ctNode: vtkMRMLScalarVolumeNode | None) -> list[str]:
        """Check that a node can be segmented; returns warnings (possibly none).

        Raises:
            ValueError: one sentence naming the problem and the fix (no input, no voxels, colour
                voxels, a single slice, intensities that are not CT Hounsfield units).
        """
        if ctNode is None:
            raise ValueError("Select a head CT volume to segment.")
        self.checkInputNode(ctNode, INPUT_ROLE)
        try:
            check_ct_intensities(self._intensitySample(ctNode))
        except MedFuseError as error:
            raise ValueError(error.message) from None
        return self._sliceWarnings(ctNode)

    @staticmethod
    def _intensitySample(ctNode: vtkMRMLScalarVolumeNode) -> sitk.Image:
        """A regular subsample (at most about :data:`INTENSITY_SAMPLE_VOXELS`) of the voxels, as an image."""
        voxels = slicer.util.arrayFromVolume(ctNode)
        step = max(1, math.ceil((voxels.size / INTENSITY_SAMPLE_VOXELS) ** (1.0 / 3.0)))
        return sitk.GetImageFromArray(np.ascontiguousarray(voxels[::step, ::step, ::step]))

    @staticmethod
    def _sliceWarnings(ctNode: vtkMRMLScalarVolumeNode) -> list[str]:
        spacing = sorted(float(s) for s in ctNode.GetSpacing())
        sliceSpacing, inPlane = spacing[-1], spacing[0]
        if sliceSpacing > THICK_SLICE_MM + 1e-3 and sliceSpacing > 2.0 * inPlane:
            return [
                f"The slices are {sliceSpacing:.3g} mm apart: thin bleeds (subarachnoid, small subdural or epidural) "
                "can be missed or under-measured; consider computing thinner slices first with the "
                "MedFuse Super-Resolution module."
            ]
        return []

    # --- running ----------------------------------------------------------------------------------
    def startJob(
        self,
        ctNode: vtkMRMLScalarVolumeNode | None,
        *,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        runner: ProcessRunner | None = None,
        **parameters: Any,
    ) -> BackendTaskJob:
        """Validate and start the backend; returns at once. Poll the job, then call :meth:`finishJob`.

        Args:
            ctNode: the head CT ``vtkMRMLScalarVolumeNode`` in HU (never modified).
            model: bundle id (``id`` or ``id@version``) or bundle folder; None uses :meth:`defaultModel`.
            device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
            runner: overrides the logic's process runner for this job.
            **parameters: task parameters by camelCase name, None = the task default:
                ``mirroring`` (average over left-right mirrored copies, about 2x slower),
                ``minComponentMl`` (remove smaller components of a class, mL),
                ``modelPostprocessing`` (also apply the model's per-class minimum volumes),
                ``overlap`` (sliding-window overlap, 0-0.9).

        Raises:
            ValueError: the CT, the model or a parameter is unusable (one sentence).
        """
        for warning in self.checkInput(ctNode):
            _log.warning("%s", warning)
        manifest = self.resolveModel(model)
        params = self.taskParameters(**parameters)
        return self.startBackendJob(
            {INPUT_ROLE: ctNode}, [OUTPUT_ROLE], params, model=str(manifest.folder), device=device, runner=runner
        )

    def finishJob(
        self,
        job: BackendTaskJob,
        segmentationNode: vtkMRMLSegmentationNode | None = None,
        tableNode: vtkMRMLTableNode | None = None,
    ) -> tuple[vtkMRMLSegmentationNode, vtkMRMLTableNode]:
        """Put a finished job's result into the scene and release the job's files.

        Creates (or overwrites) a segmentation with one segment per BHSD class and a table with each
        class's volume, components and slice range, both under the CT's study; the table's attribute
        ``MedFuse.acquisition`` holds :meth:`acquisitionLine`. The CT node is not touched. A failed or
        cancelled job changes nothing in the scene.

        Args:
            job: a job from :meth:`startJob` whose ``done`` is True.
            segmentationNode: segmentation to overwrite, or None for a new "<CT> hemorrhage".
            tableNode: table to overwrite, or None for a new "<CT> hemorrhage volumes".

        Returns:
            ``(segmentationNode, tableNode)``.

        Raises:
            RuntimeError: the job is still running, failed (the backend's message) or was cancelled.
        """
        try:
            labels = self.finishedImages(job)[OUTPUT_ROLE]
            ctNode = job.input_nodes[INPUT_ROLE]
            scene = ctNode.GetScene()
            loadTerminology()  # so Slicer shows the segments' codes; no-op without the application
            segmentationNode = mrml_bridge.labelmap_to_segmentation(
                labels,
                self.spec().labels,
                scene,
                scene.GenerateUniqueName(f"{ctNode.GetName()} hemorrhage"),
                reference_node=ctNode,
                node=segmentationNode,
            )
            modelName = self._modelName(job)
            segmentationNode.SetAttribute("MedFuse.task", TASK_NAME)
            segmentationNode.SetAttribute("MedFuse.model", modelName)
            segmentationNode.SetAttribute("MedFuse.sourceVolumeID", ctNode.GetID())
            tableNode = self.volumeTable(
                job.report, ctNode, tableNode, name=scene.GenerateUniqueName(f"{ctNode.GetName()} hemorrhage volumes")
            )
            tableNode.SetAttribute("MedFuse.model", modelName)
            # kept with the measurements, so a console user of process() and a saved scene have it too
            tableNode.SetAttribute("MedFuse.acquisition", self.acquisitionLine(job.report)[0])
            return segmentationNode, tableNode
        finally:
            job.cleanup()

    # --- scene helpers ----------------------------------------------------------------------------
    @staticmethod
    def applyDisplayWindow(ctNode: vtkMRMLScalarVolumeNode, window: str = "brain") -> None:
        """Show the CT in a window of :data:`DISPLAY_WINDOWS`: an explicit user action (the panel's button), never automatic."""
        if window not in DISPLAY_WINDOWS:
            raise ValueError(f"window must be one of {', '.join(DISPLAY_WINDOWS)}, got {window!r}")
        display = ctNode.GetDisplayNode()
        if display is None:
            ctNode.CreateDefaultDisplayNodes()
            display = ctNode.GetDisplayNode()
        width, level = DISPLAY_WINDOWS[window]
        display.AutoWindowLevelOff()
        display.SetWindowLevel(width, level)

    @staticmethod
    def volumeTable(
        report: Mapping[str, Any],
        ctNode: vtkMRMLScalarVolumeNode,
        tableNode: vtkMRMLTableNode | None = None,
        *,
        name: str = "hemorrhage volumes",
        labels: Sequence[Label] | None = None,
    ) -> vtkMRMLTableNode:
        """A table with one row per class: name, abbreviation, volume (mL), components, first/last slice.

        Values come from the job report's per-class measurements; a class the report does not list
        gets a row of zeros (so every class has a row).
        """
        labels = list(labels if labels is not None else HemorrhageLogic.spec().labels)
        measured = _classMeasurements(report)
        columns = [
            vtk.vtkStringArray(),
            vtk.vtkStringArray(),
            vtk.vtkDoubleArray(),
            vtk.vtkIntArray(),
            vtk.vtkIntArray(),
            vtk.vtkIntArray(),
        ]
        for array, (columnName, _, _, _) in zip(columns, TABLE_COLUMNS, strict=True):
            array.SetName(columnName)
        for label in labels:
            values = measured.get(label.value, {})
            first, last = values.get("slices") or (-1, -1)
            columns[0].InsertNextValue(label.name)
            columns[1].InsertNextValue(HemorrhageClass(label.value).name)
            columns[2].InsertNextValue(float(values.get("volume_ml", 0.0)))
            columns[3].InsertNextValue(int(values.get("components", 0)))
            columns[4].InsertNextValue(int(first))
            columns[5].InsertNextValue(int(last))
        if tableNode is None:
            tableNode = ctNode.GetScene().AddNewNodeByClass("vtkMRMLTableNode", name)
        wasModifying = tableNode.StartModify()
        try:
            tableNode.RemoveAllColumns()
            for array in columns:
                tableNode.AddColumn(array)
            for columnName, title, unit, description in TABLE_COLUMNS:
                tableNode.SetColumnTitle(columnName, title)
                tableNode.SetColumnUnitLabel(columnName, unit)
                tableNode.SetColumnDescription(columnName, description)
            tableNode.SetUseColumnTitleAsColumnHeader(True)
            tableNode.SetLocked(True)  # measurements of the model's result, not an editable sheet
        finally:
            tableNode.EndModify(wasModifying)
        mrml_bridge.place_under_study(tableNode, ctNode)
        return tableNode

    @staticmethod
    def resultSummary(tableNode: vtkMRMLTableNode, report: Mapping[str, Any] | None = None) -> str:
        """One line for the panel from a volumes table: total and per-class volumes, and the run time."""
        table = tableNode.GetTable()
        classes, volumes = table.GetColumnByName("Class"), table.GetColumnByName("Volume")
        found = [
            (classes.GetValue(row), volumes.GetValue(row))
            for row in range(table.GetNumberOfRows())
            if volumes.GetValue(row) > 0
        ]
        seconds = float((report or {}).get("timings_s", {}).get("total", 0.0))
        took = f" in {seconds:.0f} s" if seconds > 0 else ""
        if not found:
            return f"Done{took}: no hemorrhage found; every class has an empty segment to paint a missed bleed."
        parts = ", ".join(f"{name} {volume:.1f} mL" for name, volume in found)
        total = sum(volume for _, volume in found)
        return f"Done{took}: {total:.1f} mL of hemorrhage ({parts}); review and correct the segments."

    @staticmethod
    def acquisitionLine(report: Mapping[str, Any] | None) -> tuple[str, bool]:
        """The panel's acquisition line from a job report, and whether it is a warning.

        Reads ``report["acquisition"]`` (``summary``, ``statement``, ``within_training_range``), e.g.
        ``("Acquisition: 28 slices, 7.4 mm thick, tilt 18.5 deg, 0.49 mm in-plane — outside the
        model's training range (slices are 7.4 mm thick; ...)", True)``.

        Returns:
            ``(line, outside)``: ``outside`` is True only when the scan lies outside the ranges the model
            states (not when it states none); ``("", False)`` for a report without an acquisition
            check (a backend older than the check).
        """
        acquisition = (report or {}).get("acquisition")
        if not isinstance(acquisition, Mapping) or not acquisition.get("summary"):
            return "", False
        statement = acquisition.get("statement")
        line = f"Acquisition: {acquisition['summary']}" + (f" — {statement}" if statement else "")
        return line, acquisition.get("within_training_range") is False

    @staticmethod
    def _modelName(job: BackendTaskJob) -> str:
        try:
            manifest = load_manifest(str(job.model))
        except (MedFuseError, OSError, TypeError):
            return str(job.model or "")
        return f"{manifest.id}@{manifest.version}"


def _classMeasurements(report: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Per-class measurements of a hemorrhage job report, keyed by label value.

    Reads ``report["classes"]``: a mapping (e.g. abbreviation -> entry) or a list of entries, each with
    ``value``, ``volume_ml``, ``components`` and ``slice_range`` ([first, last] slice index k, or None).
    """
    classes = report.get("classes", [])
    entries = list(classes.values()) if isinstance(classes, Mapping) else list(classes)
    measured: dict[int, dict[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or "value" not in entry:
            continue
        sliceRange = entry.get("slice_range")
        measured[int(entry["value"])] = {
            "volume_ml": entry.get("volume_ml", 0.0),
            "components": entry.get("components", 0),
            "slices": tuple(sliceRange) if sliceRange else None,
        }
    return measured


def taskSpec() -> TaskSpec:
    """The backend's declaration of the ``hemorrhage`` task (inputs, labels, parameters)."""
    return HemorrhageLogic.spec()


def parameterRange(name: str) -> tuple[float, float]:
    """(minimum, maximum) of a numeric task parameter, e.g. ``parameterRange("overlap")``."""
    return HemorrhageLogic.parameterRange(name)

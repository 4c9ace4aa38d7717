"""Intracranial hemorrhage segmentation of a head CT node, computed by the backend's ``hemorrhage`` task.

The flow is: check the CT here (one clear sentence per problem) and pick a model bundle from the
user's model store -> start the backend out of process (:class:`MedFuseLib.task_job.BackendTaskJob`)
-> poll it -> put the label map into a segmentation with the five BHSD segments (named, coloured,
coded, under the CT's study; empty classes included so they can be painted), fill a table with each
class's volume (mL), components and slice range from the job report, and show the CT in a brain
window. Only MRML and VTK are used (no ``qt``, ``ctk`` or ``slicer.app``), so this runs headless on
slicer-core and inside the Slicer application alike.

From Slicer's Python console::

    from MedFuseHemorrhageLib import HemorrhageLogic
    ct = slicer.util.getNode("CT head")
    segmentation, table = HemorrhageLogic().process(ct, model="medfuse-hemorrhage-demo-multiwindow")
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
from MedFuseLib.task_models import TaskModels, resolveTaskParameters, taskParameterRange
from MedFuseLib.terminology import loadTerminology

from SlicerMedFuse.contract import Label, TaskSpec
from SlicerMedFuse.device import DEVICE_CHOICES
from SlicerMedFuse.errors import MedFuseError
from SlicerMedFuse.hemorrhage.inference import THICK_SLICE_MM
from SlicerMedFuse.hemorrhage.labels import HemorrhageClass
from SlicerMedFuse.hemorrhage.preprocessing import check_ct_intensities
from SlicerMedFuse.hemorrhage.simulated_dataset import SIMULATED_DATA_NOTE
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import BundleManifest
from SlicerMedFuse.models.store import InstalledModel, ModelStore
from SlicerMedFuse.tasks.hemorrhage import DEFAULT_MODEL
from SlicerMedFuse.tasks.registry import get_task

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

#: Display windows for the CT after segmentation: name -> (width, level) in HU.
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


def taskSpec() -> TaskSpec:
    """The backend's declaration of the ``hemorrhage`` task (inputs, labels, parameters)."""
    return get_task(TASK_NAME).spec


def parameterRange(name: str) -> tuple[float, float]:
    """(minimum, maximum) of a numeric task parameter, e.g. ``parameterRange("overlap")``."""
    return taskParameterRange(taskSpec(), name)


class HemorrhageModels(TaskModels):
    """The hemorrhage task's model bundles, with the hemorrhage panel's wording."""

    NO_MODEL_MESSAGE = (
        "No hemorrhage model is installed: install one with 'medfuse models install {suggestion}' "
        "or drop a model bundle folder into {modelsDir}."
    )
    WRONG_TASK_MESSAGE = "The model '{name}' is for the '{modelTask}' task, not hemorrhage; choose a hemorrhage model."


class HemorrhageLogic:
    """Runs the backend ``hemorrhage`` task on a CT volume node.

    Args:
        runner: starts the backend process (:class:`MedFuseLib.runner.ProcessRunner`); default a
            :class:`MedFuseLib.runner.SubprocessRunner`. Tests inject fakes here.
        python: interpreter for the backend; default ``PythonSlicer`` inside Slicer, else ``sys.executable``.
        store: the model store to list and resolve bundles in; default ``$MEDFUSE_HOME`` or ``~/.medfuse``
            (the backend process reads the same environment).
    """

    def __init__(
        self, runner: ProcessRunner | None = None, python: str | None = None, store: ModelStore | None = None
    ) -> None:
        self.runner = runner
        self.python = python
        self.store = store

    # --- models (see MedFuseLib.task_models.TaskModels) --------------------------------------------
    @property
    def models(self) -> HemorrhageModels:
        """The task's model bundles in :attr:`store` (read on every call, as the backend process does)."""
        return HemorrhageModels(TASK_NAME, DEFAULT_MODEL, self.store)

    def installedModels(self) -> list[InstalledModel]:
        """Bundles for the hemorrhage task, sorted by id then version: the user's store, then those
        shipped with SlicerMedFuse (``bundled`` True) for ids the store lacks."""
        return self.models.installed()

    def defaultModel(self) -> InstalledModel | None:
        """The model used when none is chosen: the latest demo model, else the latest installed one."""
        return self.models.default()

    def noModelMessage(self) -> str:
        """What to do when no hemorrhage model is installed (one sentence)."""
        return self.models.noModelMessage()

    def resolveModel(self, model: str | os.PathLike | None = None) -> BundleManifest:
        """The manifest of the model to run: an id (``id`` or ``id@version``), a bundle folder, or None for the default.

        Raises:
            ValueError: no model is installed, the id or folder is not a bundle, or the bundle is for
                another task (one sentence naming the fix).
        """
        return self.models.resolve(model)

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
        imageData = ctNode.GetImageData()
        name = ctNode.GetName()
        if imageData is None:
            raise ValueError(f"The volume '{name}' has no voxels; load or compute it first.")
        if imageData.GetNumberOfScalarComponents() != 1:
            raise ValueError(f"The volume '{name}' has colour or vector voxels; select a grey-scale head CT.")
        dimensions = imageData.GetDimensions()
        if min(dimensions) < 2:
            raise ValueError(
                f"Hemorrhage segmentation needs a 3D CT; '{name}' is a single slice "
                f"({dimensions[0]} x {dimensions[1]} x {dimensions[2]} voxels)."
            )
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

    def taskParameters(
        self,
        *,
        mirroring: bool | None = None,
        minComponentMl: float | None = None,
        modelPostprocessing: bool | None = None,
        overlap: float | None = None,
    ) -> dict[str, Any]:
        """The backend parameters (defaults from the task declaration for None), validated.

        Raises:
            ValueError: a value outside its range (the backend's sentence).
        """
        given = {
            "mirroring": mirroring,
            "min_component_ml": minComponentMl,
            "model_postprocessing": modelPostprocessing,
            "overlap": overlap,
        }
        return resolveTaskParameters(taskSpec(), given)

    # --- running ----------------------------------------------------------------------------------
    def startJob(
        self,
        ctNode: vtkMRMLScalarVolumeNode | None,
        *,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        mirroring: bool | None = None,
        minComponentMl: float | None = None,
        modelPostprocessing: bool | None = None,
        overlap: float | None = None,
        runner: ProcessRunner | None = None,
    ) -> BackendTaskJob:
        """Validate and start the backend; returns at once. Poll the job, then call :meth:`finishJob`.

        Args:
            ctNode: the head CT ``vtkMRMLScalarVolumeNode`` in HU (never modified).
            model: bundle id (``id`` or ``id@version``) or bundle folder; None uses :meth:`defaultModel`.
            device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
            mirroring: average over left-right mirrored copies (about 2x slower); None = task default.
            minComponentMl: remove components of a class smaller than this (mL); None = task default.
            modelPostprocessing: also apply the model's per-class minimum volumes (chosen on validation
                cases after training; the larger value wins); None = task default (on).
            overlap: sliding-window overlap (0-0.9); None = task default.
            runner: overrides the logic's process runner for this job.

        Raises:
            ValueError: the CT, the model or a parameter is unusable (one sentence).
        """
        for warning in self.checkInput(ctNode):
            _log.warning("%s", warning)
        manifest = self.resolveModel(model)
        params = self.taskParameters(
            mirroring=mirroring, minComponentMl=minComponentMl, modelPostprocessing=modelPostprocessing, overlap=overlap
        )
        job = BackendTaskJob(
            TASK_NAME,
            {INPUT_ROLE: ctNode},
            [OUTPUT_ROLE],
            params,
            device=device,
            model=str(manifest.folder),
            runner=runner or self.runner,
            python=self.python,
        )
        job.start()
        return job

    def finishJob(
        self,
        job: BackendTaskJob,
        segmentationNode: vtkMRMLSegmentationNode | None = None,
        tableNode: vtkMRMLTableNode | None = None,
        *,
        window: str = "brain",
    ) -> tuple[vtkMRMLSegmentationNode, vtkMRMLTableNode]:
        """Put a finished job's result into the scene and release the job's files.

        Creates (or overwrites) a segmentation with one segment per BHSD class and a table with each
        class's volume, components and slice range, both under the CT's study, and shows the CT in
        ``window``. A failed or cancelled job changes nothing in the scene.

        Args:
            job: a job from :meth:`startJob` whose ``done`` is True.
            segmentationNode: segmentation to overwrite, or None for a new "<CT> hemorrhage".
            tableNode: table to overwrite, or None for a new "<CT> hemorrhage volumes".
            window: a key of :data:`DISPLAY_WINDOWS` for the CT's display.

        Returns:
            ``(segmentationNode, tableNode)``.

        Raises:
            RuntimeError: the job is still running, failed (the backend's message) or was cancelled.
        """
        if not job.done:
            raise RuntimeError("The hemorrhage job is still running; wait for it or cancel it first.")
        try:
            if not job.succeeded:
                raise RuntimeError(job.error_message or "Hemorrhage segmentation failed without a message.")
            ctNode = job.input_nodes[INPUT_ROLE]
            labels = job.result_images()[OUTPUT_ROLE]
            scene = ctNode.GetScene()
            loadTerminology()  # so Slicer shows the segments' codes; no-op without the application
            segmentationNode = mrml_bridge.labelmap_to_segmentation(
                labels,
                taskSpec().labels,
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
            self.applyDisplayWindow(ctNode, window)
            return segmentationNode, tableNode
        finally:
            job.cleanup()

    def process(
        self, ctNode: vtkMRMLScalarVolumeNode, model: str | os.PathLike | None = None, **options: Any
    ) -> tuple[vtkMRMLSegmentationNode, vtkMRMLTableNode]:
        """Segment and wait: start the backend, run it to the end, return ``(segmentationNode, tableNode)``.

        Blocks until done (Ctrl+C cancels). For Slicer's Python console and scripts; the panel uses
        :meth:`startJob` / :meth:`finishJob` so the application stays responsive. Example::

            from MedFuseHemorrhageLib import HemorrhageLogic
            segmentation, table = HemorrhageLogic().process(slicer.util.getNode("CT"), model="medfuse-hemorrhage-demo-multiwindow")

        Args:
            ctNode: the head CT (never modified).
            model: as in :meth:`startJob`.
            **options: the other keyword arguments of :meth:`startJob` (device, mirroring,
                minComponentMl, modelPostprocessing, overlap, runner) and of :meth:`finishJob` (segmentationNode,
                tableNode, window).
        """
        finishOptions = {key: options.pop(key) for key in ("segmentationNode", "tableNode", "window") if key in options}
        job = self.startJob(ctNode, model=model, **options)
        try:
            job.wait()
        except BaseException:
            job.cancel()
            job.cleanup()
            raise
        return self.finishJob(job, **finishOptions)

    # --- scene helpers ----------------------------------------------------------------------------
    @staticmethod
    def applyDisplayWindow(ctNode: vtkMRMLScalarVolumeNode, window: str = "brain") -> None:
        """Show the CT in a brain window (:data:`DISPLAY_WINDOWS`); only its display node changes."""
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
        labels = list(labels if labels is not None else taskSpec().labels)
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

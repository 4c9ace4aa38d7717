"""Deformable registration of two volume nodes, computed by the backend's ``registration`` task.

The flow is: check the nodes here (one clear sentence per problem) -> start the backend out of
process (:class:`MedFuseLib.task_job.BackendTaskJob`) -> poll it -> put the results in the scene:

* a **grid transform node** holding the backend's displacement field (fixed grid, the whole
  linear + deformable mapping), with node references ``fixedVolume`` / ``movingVolume``. Put the
  moving volume (or anything in moving space) under it to see it aligned with the fixed volume;
* optionally the **resampled moving volume** on the fixed grid (the backend's ``warped`` output);
* optionally a **registered copy of a segmentation** of the moving image.

Applying to a segmentation goes through the backend, not through hardening the grid transform
onto a copy: the segments become one label map on the moving grid (backend input
``moving_labels``), the backend warps it with label-aware interpolation (each label's one-hot
channel is interpolated linearly and the largest wins, so thin structures survive where nearest
neighbour would break them) and the result becomes a segmentation on the *fixed* volume's grid,
voxel for voxel aligned with the fixed image, with the original segment names, colours and
terminology. It is the same code path as the command line and the benchmark (whose Dice
scores describe it), and it needs no inverse of the grid transform, which hardening a
segmentation in Slicer computes iteratively. The price: overlapping segments share one label
map, so where segments overlap the later one wins.

The user's input nodes are only read: nothing is put under the transform, hardened or resampled in
place. Only MRML and VTK are used (no ``qt``, ``ctk`` or ``slicer.app``), so this runs headless on
slicer-core and inside the Slicer application alike.

From Slicer's Python console::

    from MedFuseRegistrationLib import RegistrationLogic
    outputs = RegistrationLogic().process(slicer.util.getNode("MRBrainT1"), slicer.util.getNode("MRBrainT2"), preset="fast")
    outputs.volume                                # T2 resampled onto the T1 grid
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from MedFuseLib import mrml_bridge
from MedFuseLib.runner import ProcessRunner
from MedFuseLib.task_job import BackendTaskJob
from MedFuseLib.task_logic import TaskLogic

from MedFuseRegistrationLib.UserPresets import PRESET_FOLDER_NAME, UserPresetStore, listValue
from SlicerMedFuse.facade import (
    DEVICE_CHOICES,
    REGISTRATION_PARAMETERS,
    REGISTRATION_PRESET_DIR,
    REGISTRATION_PRESETS,
    Label,
    MedFuseError,
    TaskSpec,
    default_home,
    ijk_to_ras_matrix,
    load_preset,
    resample_to_reference,
    same_grid,
    settings_from_parameters,
)

if TYPE_CHECKING:
    from slicer import (
        vtkMRMLGridTransformNode,
        vtkMRMLLabelMapVolumeNode,
        vtkMRMLScalarVolumeNode,
        vtkMRMLSegmentationNode,
    )

__all__ = [
    "DEVICE_CHOICES",
    "PANEL_PARAMETERS",
    "PRESETS",
    "TASK_NAME",
    "RegistrationJob",
    "RegistrationLogic",
    "RegistrationOutputs",
    "builtinPresetValues",
    "defaultPresetDirectory",
    "panelValues",
    "parameterChoices",
    "parameterRange",
    "taskSpec",
]

TASK_NAME = "registration"
TRANSFORM_ROLE, VOLUME_ROLE, LABELS_ROLE = "displacement", "warped", "warped_labels"
#: Advanced parameters the panel shows (the rest keep their preset values; scripts may override any).
PANEL_PARAMETERS = ("similarity", "regularizer", "levels", "iterations", "diffeomorphic")
PARAMETERS, PRESETS = REGISTRATION_PARAMETERS, REGISTRATION_PRESETS

_log = logging.getLogger(__name__)


def taskSpec() -> TaskSpec:
    """The backend's declaration of the ``registration`` task (inputs, outputs, parameters)."""
    return RegistrationLogic.spec()


def parameterChoices(name: str) -> tuple[str, ...]:
    """Allowed values of a choice parameter, e.g. ``parameterChoices("similarity")``."""
    return tuple(RegistrationLogic.parameterChoices(name))


def parameterRange(name: str) -> tuple[float, float]:
    """(minimum, maximum) of a numeric task parameter, e.g. ``parameterRange("levels")``."""
    return RegistrationLogic.parameterRange(name)


def builtinPresetValues(name: str) -> dict[str, Any]:
    """Every parameter value of a built-in preset (lists as lists), e.g. ``builtinPresetValues("fast")``."""
    return {key: listValue(key, value) for key, value in load_preset(name).items()}


def panelValues(values: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`PANEL_PARAMETERS` of a preset's values as the panel shows them (lists as ``"100,60,30"``)."""
    return {name: _backendValue(values[name]) for name in PANEL_PARAMETERS}


def defaultPresetDirectory() -> Path:
    """Where user presets live: beside Slicer's user settings file, or ``$MEDFUSE_HOME`` outside the app."""
    app = getattr(slicer, "app", None)
    if app is not None:
        return Path(app.slicerUserSettingsFilePath).parent / PRESET_FOLDER_NAME
    return default_home() / PRESET_FOLDER_NAME


@dataclasses.dataclass
class RegistrationOutputs:
    """The nodes :meth:`RegistrationLogic.finishJob` filled: always a transform, the others when asked for."""

    transform: vtkMRMLGridTransformNode
    volume: vtkMRMLScalarVolumeNode | None = None
    segmentation: vtkMRMLSegmentationNode | None = None


class RegistrationJob(BackendTaskJob):
    """A backend ``registration`` run, plus what is needed to rebuild the segmentation afterwards.

    Attributes:
        fixedVolume, movingVolume: the input nodes (only read).
        movingSegmentation: the segmentation carried along, or None.
        segmentLabels: label value, name and colour given to each of its segments.
        segmentTerminology: segment name -> the segment's terminology entry (copied to the result).
        presetName: the preset the run started from (built-in or user).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fixedVolume = kwargs.pop("fixedVolume")
        self.movingVolume = kwargs.pop("movingVolume")
        self.movingSegmentation = kwargs.pop("movingSegmentation", None)
        self.segmentLabels: list[Label] = kwargs.pop("segmentLabels", [])
        self.segmentTerminology: dict[str, str] = kwargs.pop("segmentTerminology", {})
        self.presetName: str = kwargs.pop("presetName", "")
        super().__init__(*args, **kwargs)


class RegistrationLogic(TaskLogic):
    """Runs the backend ``registration`` task on volume nodes and manages the user's presets.

    Args:
        runner: starts the backend process (:class:`MedFuseLib.runner.ProcessRunner`); default a
            :class:`MedFuseLib.runner.SubprocessRunner`. Tests inject fakes here.
        python: interpreter for the backend; default ``PythonSlicer`` inside Slicer, else ``sys.executable``.
        presetDirectory: folder of the user's presets; default :func:`defaultPresetDirectory`.
        **options: the other arguments of :class:`MedFuseLib.task_logic.TaskLogic` (store, scheduler).
    """

    TASK_NAME = TASK_NAME
    FINISH_OPTIONS = ("transformNode", "volumeNode", "segmentationNode")

    def __init__(
        self,
        runner: ProcessRunner | None = None,
        python: str | None = None,
        presetDirectory: str | os.PathLike | None = None,
        **options: Any,
    ) -> None:
        super().__init__(runner, python, **options)
        self.userPresets = UserPresetStore(presetDirectory if presetDirectory is not None else defaultPresetDirectory())

    # --- presets ----------------------------------------------------------------------------------
    def presetNames(self) -> list[str]:
        """Built-in presets first (fast, accurate, diffeomorphic, multimodal), then the user's."""
        return [*PRESETS, *self.userPresets.names()]

    def isUserPreset(self, name: str) -> bool:
        return name not in PRESETS and name in self.userPresets.names()

    def presetValues(self, name: str) -> dict[str, Any]:
        """Every parameter value of a built-in or user preset (lists as lists).

        Raises:
            ValueError: unknown preset or an unreadable preset file (one sentence).
        """
        if name in PRESETS:
            return builtinPresetValues(name)
        if name not in self.userPresets.names():
            raise ValueError(f"Unknown registration preset '{name}'; choose one of {', '.join(self.presetNames())}.")
        return {key: listValue(key, value) for key, value in self.userPresets.load(name).items()}

    def presetDescription(self, name: str) -> str:
        """The description stored in a preset's JSON file ("" when it has none)."""
        import json

        path = self._presetPath(name)
        try:
            return str(json.loads(path.read_text(encoding="utf-8")).get("description", ""))
        except (OSError, ValueError):
            return ""

    def saveUserPreset(
        self, name: str, *, base: str = "fast", overrides: Mapping[str, Any] | None = None, description: str = ""
    ) -> Path:
        """Save a built-in preset with ``overrides`` as the user preset ``name`` (in the user's settings folder).

        ``base`` may itself be a user preset; the saved file then records that preset's own base.

        Raises:
            ValueError: a bad name or values the registration would refuse (one sentence).
        """
        values = self.presetValues(base)
        values.update(overrides or {})
        builtin = base if base in PRESETS else self._presetBase(base)
        return self.userPresets.save(name, values, base=builtin, description=description)

    def deleteUserPreset(self, name: str) -> None:
        self.userPresets.delete(name)

    def _presetPath(self, name: str) -> Path:
        if name in PRESETS:
            return REGISTRATION_PRESET_DIR / f"{name}.json"
        return self.userPresets.path(name)

    def _presetBase(self, name: str) -> str:
        import json

        try:
            base = json.loads(self._presetPath(name).read_text(encoding="utf-8")).get("base", "fast")
        except (OSError, ValueError):
            base = "fast"
        return base if base in PRESETS else "fast"

    # --- validation -------------------------------------------------------------------------------
    def presetParameters(
        self,
        preset: str = "fast",
        overrides: Mapping[str, Any] | None = None,
        *,
        labelInterpolation: str = "label",
    ) -> dict[str, Any]:
        """The backend parameters: the preset (a name, or a user preset's file) and the overrides that differ from it.

        Raises:
            ValueError: an unknown preset or parameter, or values the registration would refuse (one sentence).
        """
        values = self.presetValues(preset)
        overrides = {key: listValue(key, value) for key, value in (overrides or {}).items()}
        unknown = sorted(set(overrides) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"Unknown registration parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}.")
        changed = {key: value for key, value in overrides.items() if value != values.get(key)}
        try:
            settings_from_parameters({**values, **changed})
            given = {
                "preset": preset if preset in PRESETS else str(self.userPresets.path(preset)),
                "label_interpolation": labelInterpolation,
                **{key: _backendValue(value) for key, value in changed.items()},
            }
            return self.spec().resolve_parameters(given)
        except MedFuseError as error:
            raise ValueError(error.message) from None

    @classmethod
    def checkVolume(cls, volumeNode: vtkMRMLScalarVolumeNode | None, role: str) -> None:
        """Raise ValueError (one sentence) unless the node is a grey-scale 3D volume with voxels (``role``: fixed or moving)."""
        if volumeNode is None:
            raise ValueError(f"Select a {role} volume.")
        cls.checkInputNode(volumeNode, role)

    def _maskInput(self, maskNode, imageNode, role: str):
        """The mask as a node on its image's grid: the user's node when it already is, else a resampled detached copy."""
        if maskNode is None:
            return None
        if maskNode.GetImageData() is None:
            raise ValueError(f"The {role} mask '{maskNode.GetName()}' has no voxels; select another mask.")
        if not np.any(slicer.util.arrayFromVolume(maskNode) > 0):
            raise ValueError(
                f"The {role} mask '{maskNode.GetName()}' is empty; paint the region or leave the mask out."
            )
        mask, image = mrml_bridge.volume_node_to_image(maskNode), mrml_bridge.volume_node_to_image(imageNode)
        if same_grid(mask, image):
            return maskNode
        mask = resample_to_reference(mask > 0, image, interpolation="nearest", default_value=0)
        if not np.any(sitk.GetArrayViewFromImage(mask)):
            raise ValueError(
                f"The {role} mask '{maskNode.GetName()}' does not overlap the {role} volume; select the mask drawn on it."
            )
        return _detachedLabelmap(mask, f"{role} mask")

    def _segmentationInput(self, segmentationNode, movingVolume) -> tuple[Any, list[Label], dict[str, str]]:
        """(label map node on the moving grid, label per segment, terminology per segment name)."""
        name = segmentationNode.GetName()
        if segmentationNode.GetParentTransformNode() is not None:
            raise ValueError(
                f"The segmentation '{name}' is under a transform; harden it first (Data module, right-click > "
                "Harden transform) so its segments lie where they are shown."
            )
        segmentation = segmentationNode.GetSegmentation()
        segments = [segmentation.GetNthSegment(index) for index in range(segmentation.GetNumberOfSegments())]
        if not segments:
            raise ValueError(f"The segmentation '{name}' has no segments; choose a segmentation of the moving volume.")
        names = [segment.GetName() for segment in segments]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(
                f"The segmentation '{name}' has several segments named {', '.join(repeated)}; give each segment its own name."
            )
        labels = [
            Label(index + 1, segment.GetName(), tuple(int(round(255 * c)) for c in segment.GetColor()))
            for index, segment in enumerate(segments)
        ]
        try:
            labelImage = mrml_bridge.segmentation_to_labelmap(segmentationNode, movingVolume, labels)
        except RuntimeError:  # e.g. segments loaded as surfaces only; converting them would change the user's node
            raise ValueError(
                f"The segmentation '{name}' has no binary label map representation; create it first "
                "(Segmentations module > Representations > Binary labelmap > Create)."
            ) from None
        if not np.any(sitk.GetArrayViewFromImage(labelImage)):
            raise ValueError(
                f"The segments of '{name}' are empty inside the moving volume; choose a segmentation of the moving volume."
            )
        tag = slicer.vtkSegment.GetTerminologyEntryTagName()
        terminology = {}
        for segment in segments:
            entry = vtk.reference("")
            if segment.GetTag(tag, entry) and str(entry):
                terminology[segment.GetName()] = str(entry)
        return _detachedLabelmap(labelImage, "moving labels"), labels, terminology

    # --- running ----------------------------------------------------------------------------------
    def startJob(
        self,
        fixedVolume: vtkMRMLScalarVolumeNode | None,
        movingVolume: vtkMRMLScalarVolumeNode | None,
        *,
        fixedMask: vtkMRMLLabelMapVolumeNode | None = None,
        movingMask: vtkMRMLLabelMapVolumeNode | None = None,
        movingSegmentation: vtkMRMLSegmentationNode | None = None,
        preset: str = "fast",
        overrides: Mapping[str, Any] | None = None,
        resampledVolume: bool = True,
        labelInterpolation: str = "label",
        device: str = "auto",
        runner: ProcessRunner | None = None,
    ) -> RegistrationJob:
        """Validate and start the backend; returns at once. Poll the job, then call :meth:`finishJob`.

        Args:
            fixedVolume: the reference ``vtkMRMLScalarVolumeNode``; outputs lie on its grid.
            movingVolume: the volume to align (any modality).
            fixedMask, movingMask: optional label maps (> 0 inside) restricting where the similarity
                counts; a mask on another grid is resampled onto its volume's grid (nearest neighbour).
            movingSegmentation: optional segmentation of the moving volume to carry over.
            preset: a built-in preset (``fast``, ``accurate``, ``diffeomorphic``, ``multimodal``) or a saved user preset.
            overrides: parameter values replacing the preset's (any name of the backend's ``PARAMETERS``).
            resampledVolume: also compute the moving volume resampled onto the fixed grid.
            labelInterpolation: ``label`` (label-aware) or ``nearest`` for the segmentation.
            device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
            runner: overrides the logic's process runner for this job.

        Raises:
            ValueError: the inputs or parameters cannot be used (one sentence naming the fix).
        """
        self.checkVolume(fixedVolume, "fixed")
        self.checkVolume(movingVolume, "moving")
        self.checkInputNodes({"fixed": fixedVolume, "moving": movingVolume})
        params = self.presetParameters(preset, overrides, labelInterpolation=labelInterpolation)
        inputs: dict[str, Any] = {"fixed": fixedVolume, "moving": movingVolume}
        for role, mask, image in (("fixed", fixedMask, fixedVolume), ("moving", movingMask, movingVolume)):
            node = self._maskInput(mask, image, role)
            if node is not None:
                inputs[f"{role}_mask"] = node
        labels: list[Label] = []
        terminology: dict[str, str] = {}
        if movingSegmentation is not None:
            inputs["moving_labels"], labels, terminology = self._segmentationInput(movingSegmentation, movingVolume)
        outputs = [TRANSFORM_ROLE, *([VOLUME_ROLE] if resampledVolume else []), *([LABELS_ROLE] if labels else [])]
        return self.startBackendJob(
            inputs,
            outputs,
            params,
            device=device,
            runner=runner,
            jobClass=RegistrationJob,
            fixedVolume=fixedVolume,
            movingVolume=movingVolume,
            movingSegmentation=movingSegmentation,
            segmentLabels=labels,
            segmentTerminology=terminology,
            presetName=preset,
        )

    def finishJob(
        self,
        job: RegistrationJob,
        transformNode: vtkMRMLGridTransformNode | None = None,
        volumeNode: vtkMRMLScalarVolumeNode | None = None,
        segmentationNode: vtkMRMLSegmentationNode | None = None,
    ) -> RegistrationOutputs:
        """Put a finished job's results into the scene and release the job's files.

        A failed or cancelled job changes nothing in the scene. The input nodes are not touched.

        Args:
            job: a job from :meth:`startJob` whose ``done`` is True.
            transformNode: grid transform node to overwrite, or None for a new "<moving> to <fixed>".
            volumeNode: volume to overwrite with the resampled moving volume, or None for a new one.
            segmentationNode: segmentation to overwrite with the registered segments, or None for a new one.

        Raises:
            RuntimeError: the job is still running, failed (the backend's message) or was cancelled.
        """
        try:
            images = self.finishedImages(job)
            fixed, moving = job.fixedVolume, job.movingVolume
            scene = fixed.GetScene()
            transform = mrml_bridge.displacement_field_to_grid_transform(
                images[TRANSFORM_ROLE],
                scene,
                scene.GenerateUniqueName(f"{moving.GetName()} to {fixed.GetName()}"),
                fixed_node=fixed,
                moving_node=moving,
                node=transformNode,
            )
            outputs = RegistrationOutputs(transform=transform)
            if VOLUME_ROLE in images:
                outputs.volume = mrml_bridge.image_to_volume_node(
                    images[VOLUME_ROLE],
                    scene,
                    scene.GenerateUniqueName(f"{moving.GetName()} registered"),
                    node=volumeNode,
                    reference_node=moving,  # window/level and colours of the moving volume
                )
                mrml_bridge.place_under_study(outputs.volume, fixed)  # it lies on the fixed grid
            if LABELS_ROLE in images:
                outputs.segmentation = self._registeredSegmentation(job, images[LABELS_ROLE], segmentationNode)
            for node in (outputs.transform, outputs.volume, outputs.segmentation):
                if node is not None:
                    node.SetAttribute("MedFuse.task", TASK_NAME)
                    node.SetAttribute("MedFuse.preset", job.presetName)
                    node.SetAttribute("MedFuse.fixedVolumeID", fixed.GetID())
                    node.SetAttribute("MedFuse.movingVolumeID", moving.GetID())
            return outputs
        finally:
            job.cleanup()

    def _registeredSegmentation(self, job: RegistrationJob, labels: sitk.Image, node) -> vtkMRMLSegmentationNode:
        fixed, source = job.fixedVolume, job.movingSegmentation
        scene = fixed.GetScene()
        node = mrml_bridge.labelmap_to_segmentation(
            labels,
            job.segmentLabels,
            scene,
            scene.GenerateUniqueName(f"{source.GetName()} registered"),
            reference_node=fixed,
            node=node,
        )
        tag = slicer.vtkSegment.GetTerminologyEntryTagName()
        segmentation = node.GetSegmentation()
        for label in job.segmentLabels:
            entry = job.segmentTerminology.get(label.name)
            segmentId = segmentation.GetSegmentIdBySegmentName(label.name)
            if entry and segmentId:
                segmentation.GetSegment(segmentId).SetTag(tag, entry)
        node.SetAttribute("MedFuse.sourceSegmentationID", source.GetID())
        return node

    # --- reporting --------------------------------------------------------------------------------
    @staticmethod
    def resultSummary(report: Mapping[str, Any]) -> str:
        """A few lines for the panel from a job report: similarity before/after, folding, time, device, warnings."""
        lines = []
        similarity = report.get("similarity", {})
        if {"before", "after"} <= set(similarity):
            better = "higher" if similarity.get("higher_is_better") else "lower"
            lines.append(
                f"{str(similarity.get('metric', '')).upper()} {similarity['before']:.4g} -> {similarity['after']:.4g} "
                f"({better} is better)"
            )
        if "folding_percent" in report:
            lines.append(f"voxels with |J| <= 0: {report['folding_percent']:.3g} %")
        seconds = report.get("timings_s", {}).get("total")
        device = report.get("device", {})
        where = device.get("name", "") if isinstance(device, Mapping) else str(device)
        if seconds:
            lines.append(f"{seconds:.1f} s" + (f" on {where}" if where else ""))
        text = "Done: " + "; ".join(lines) + "." if lines else "Done."
        return "\n".join([text, *report.get("warnings", [])])


def _backendValue(value: Any) -> Any:
    """A value as the backend's command line takes it: lists comma-separated."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(item) for item in value)
    return value


def _detachedLabelmap(image: sitk.Image, name: str) -> vtkMRMLLabelMapVolumeNode:
    """A label map volume node outside any scene holding ``image`` (so the scene gains no helper nodes)."""
    node = slicer.vtkMRMLLabelMapVolumeNode()
    node.SetName(name)
    slicer.util.updateVolumeFromArray(node, sitk.GetArrayFromImage(image))
    matrix = vtk.vtkMatrix4x4()
    values = ijk_to_ras_matrix(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(values[row][column]))
    node.SetIJKToRASMatrix(matrix)
    return node

"""Through-plane super-resolution of a volume node, computed by the backend's ``superres`` task.

The flow is: check the input here (one clear sentence per problem, the backend's own rules) ->
start the backend out of process (:class:`MedFuseLib.task_job.BackendTaskJob`) -> poll it -> put
the result into a volume node beside the input. What every task shares (input checks, parameters,
start / finish / cancel, async runs) is :class:`MedFuseLib.task_logic.TaskLogic`; this module keeps
the slice geometry. Only MRML and VTK are used (no ``qt``, ``ctk`` or ``slicer.app``), so this runs
headless on slicer-core and inside the Slicer application alike.

From Slicer's Python console::

    from MedFuseSuperResolutionLib import SuperResolutionLogic
    fine = SuperResolutionLogic().process(slicer.util.getNode("CTHead"), method="bspline")

Slice geometry follows SR4ZCT (Shi et al., MLMI 2023): slices are ``d`` mm apart (slice spacing),
each averages ``r`` mm of tissue (slice thickness), so neighbours overlap by ``r - d``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import SimpleITK as sitk
import vtk
from MedFuseLib import mrml_bridge
from MedFuseLib.runner import ProcessRunner
from MedFuseLib.task_job import BackendTaskJob
from MedFuseLib.task_logic import TaskLogic
from MedFuseLib.task_run import TaskRun

from SlicerMedFuse.facade import DEVICE_CHOICES, TaskSpec, VolumeGrid, detect_slice_geometry

if TYPE_CHECKING:
    from slicer import vtkMRMLScalarVolumeNode

__all__ = [
    "DEVICE_CHOICES",
    "SuperResolutionLogic",
    "TASK_NAME",
    "methodChoices",
    "methodNote",
    "parameterRange",
    "taskSpec",
]

TASK_NAME = "superres"
INPUT_ROLE = "volume"
OUTPUT_ROLE = "volume"

#: Node attributes that may carry the DICOM Slice Thickness (0018,0050) in mm, first match wins.
THICKNESS_ATTRIBUTES = ("DICOM.SliceThickness", "dicom.SliceThickness", "SliceThickness")
#: Attribute Slicer's DICOM import puts on a volume: its instance UIDs, space separated.
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"

#: What each method does and costs, shown under the method selector. A method the backend adds
#: without a note here shows its generic description instead.
METHOD_NOTES = {
    "sr4zct": (
        "SR4ZCT network: learns to undo the through-plane blur from this volume's own sharp in-plane "
        "images (no training data, no downloaded weights), then sharpens the coronal and sagittal "
        "reformats. Trains on every run: fast quality takes minutes on a CPU, faithful (the paper's "
        "configuration) hours on a GPU. Needs the true slice thickness: a wrong one adds artefacts."
    ),
    "linear": "Linear interpolation between neighbouring slices. Fastest and softest; adds no detail.",
    "bspline": "Cubic B-spline interpolation. Smooth and a little sharper than linear; adds no detail.",
    "sinc": "Windowed-sinc interpolation. Sharpest baseline; may ring at bone edges (clipped to the input range).",
}

#: Slice orientation named by the anatomical axis the slices are stacked along (R, A, S).
_ORIENTATION_BY_AXIS = ("sagittal", "coronal", "axial")
_AXIS_NAMES = ("left-right", "posterior-anterior", "inferior-superior")

_log = logging.getLogger(__name__)


def taskSpec() -> TaskSpec:
    """The backend's declaration of the ``superres`` task (inputs, outputs, parameters)."""
    return SuperResolutionLogic.spec()


def methodChoices() -> list[str]:
    """The methods the installed backend offers, in its order."""
    return SuperResolutionLogic.parameterChoices("method")


def parameterRange(name: str) -> tuple[float, float]:
    """(minimum, maximum) of a numeric task parameter, e.g. ``parameterRange("target_spacing")``."""
    return SuperResolutionLogic.parameterRange(name)


def methodNote(method: str) -> str:
    """One line on what ``method`` does, for the panel."""
    return METHOD_NOTES.get(method, SuperResolutionLogic.parameterSpec("method").description)


class DicomDatabase(Protocol):
    """The part of ``slicer.dicomDatabase`` used to read a loaded series' Slice Thickness."""

    def fileForInstance(self, sopInstanceUID: str) -> str: ...

    def fileValue(self, fileName: str, tag: str) -> str: ...


class SuperResolutionLogic(TaskLogic):
    """Runs the backend ``superres`` task on volume nodes.

    Args:
        dicomDatabase: ``slicer.dicomDatabase`` inside the application, to read the Slice Thickness of
            volumes loaded from DICOM; None where there is none (headless).
        **options: those of :class:`MedFuseLib.task_logic.TaskLogic` (runner, python, store, scheduler).
    """

    TASK_NAME = TASK_NAME

    def __init__(
        self,
        runner: ProcessRunner | None = None,
        python: str | None = None,
        dicomDatabase: DicomDatabase | None = None,
        **options: Any,
    ) -> None:
        super().__init__(runner, python, **options)
        self.dicomDatabase = dicomDatabase

    # --- geometry ---------------------------------------------------------------------------------
    def detectSliceGeometry(self, volumeNode: vtkMRMLScalarVolumeNode, sliceThickness: float = 0.0) -> dict[str, Any]:
        """The through-plane geometry of a volume, by the same rules the backend applies.

        Args:
            volumeNode: a ``vtkMRMLScalarVolumeNode`` with image data.
            sliceThickness: the user's thickness in mm; 0 detects it (DICOM Slice Thickness when
                recorded on the node or in Slicer's DICOM database, else the slice spacing).

        Returns:
            ``sliceAxis`` (IJK index 0-2 along which slices are stacked), ``orientation`` ("axial",
            "coronal" or "sagittal"), ``direction`` (e.g. "inferior-superior"), ``sliceSpacing``,
            ``inPlaneSpacing``, ``thickness`` and ``overlap`` in mm, ``thicknessSource`` ("user",
            "dicom" or "spacing"), ``isotropic`` (bool) and ``dimensions`` (voxels along I, J, K).
        """
        self._checkVolume(volumeNode)
        geometry = detect_slice_geometry(self._grid(volumeNode), float(sliceThickness))
        anatomicalAxis = self._anatomicalAxis(volumeNode, geometry.axis)
        return {
            "sliceAxis": geometry.axis,
            "orientation": _ORIENTATION_BY_AXIS[anatomicalAxis],
            "direction": _AXIS_NAMES[anatomicalAxis],
            "sliceSpacing": geometry.slice_spacing,
            "inPlaneSpacing": geometry.in_plane_spacing,
            "thickness": geometry.thickness,
            "thicknessSource": geometry.thickness_source,
            "overlap": geometry.overlap,
            "isotropic": geometry.is_isotropic,
            "dimensions": tuple(volumeNode.GetImageData().GetDimensions()),
        }

    @staticmethod
    def describeSliceGeometry(geometry: Mapping[str, Any]) -> str:
        """A one-line summary of :meth:`detectSliceGeometry`'s result for the panel."""
        source = {"dicom": "from DICOM", "user": "as entered", "spacing": "assumed = spacing"}
        text = (
            f"{geometry['orientation']} slices every {geometry['sliceSpacing']:.3g} mm, "
            f"{geometry['thickness']:.3g} mm thick ({source.get(geometry['thicknessSource'], geometry['thicknessSource'])}), "
            f"{SuperResolutionLogic._overlapText(geometry['overlap'])}; in-plane {geometry['inPlaneSpacing']:.3g} mm"
        )
        return text + (" (already isotropic)" if geometry["isotropic"] else "")

    @staticmethod
    def _overlapText(overlap: float) -> str:
        """SR4ZCT's o = r - d in words: neighbouring slices overlap (o > 0) or leave gaps (o < 0)."""
        if abs(overlap) < 1e-6:
            return "no overlap"
        return f"overlap {overlap:.3g} mm" if overlap > 0 else f"gaps of {-overlap:.3g} mm"

    def recordedSliceThickness(self, volumeNode: vtkMRMLScalarVolumeNode) -> float | None:
        """Slice Thickness (mm) recorded for the volume, or None when nothing is recorded."""
        for attribute in THICKNESS_ATTRIBUTES:
            value = _positiveFloat(volumeNode.GetAttribute(attribute))
            if value is not None:
                return value
        uids = (volumeNode.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
        if uids and self.dicomDatabase is not None:
            try:
                fileName = self.dicomDatabase.fileForInstance(uids[0])
                return _positiveFloat(self.dicomDatabase.fileValue(fileName, "0018,0050")) if fileName else None
            except Exception as error:  # a stale database must not block the module
                _log.warning(
                    "Could not read Slice Thickness of '%s' from the DICOM database: %s", volumeNode.GetName(), error
                )
        return None

    # --- validation -------------------------------------------------------------------------------
    def checkedParameters(
        self,
        inputVolume: vtkMRMLScalarVolumeNode | None,
        outputVolume: vtkMRMLScalarVolumeNode | None = None,
        **parameters: Any,
    ) -> dict[str, Any]:
        """Check the inputs and return the backend parameters for them (arguments as in :meth:`startJob`).

        Only the volume's grid is checked here (size, spacing, recorded thickness); its voxels are
        not copied.

        Raises:
            ValueError: one sentence naming the problem and the fix (no input, 2D input, output
                equal to the input, already isotropic, target not finer than the slices, ...).
        """
        self._checkVolume(inputVolume)
        self.checkOutputNode(outputVolume, {INPUT_ROLE: inputVolume})
        if not parameters.get("sliceThickness"):
            parameters["sliceThickness"] = self.recordedSliceThickness(inputVolume) or 0.0
        params = self.taskParameters(**parameters)
        self.precheckGrids({INPUT_ROLE: self._grid(inputVolume)}, params)
        return params

    # --- running ----------------------------------------------------------------------------------
    def startJob(
        self,
        inputVolume: vtkMRMLScalarVolumeNode | None,
        outputVolume: vtkMRMLScalarVolumeNode | None = None,
        *,
        device: str = "auto",
        runner: ProcessRunner | None = None,
        **parameters: Any,
    ) -> BackendTaskJob:
        """Validate and start the backend; returns at once. Poll the job, then call :meth:`finishJob`.

        Args:
            inputVolume: the thick-slice ``vtkMRMLScalarVolumeNode`` (never modified).
            outputVolume: the node :meth:`finishJob` will fill (only checked here), or None.
            device: ``auto``, ``cpu``, ``cuda`` or ``mps`` (matters for network methods).
            runner: overrides the logic's process runner for this job.
            **parameters: task parameters by camelCase name, None or absent = the task default:
                ``method`` (one of :func:`methodChoices`), ``targetSpacing`` (new slice spacing in mm;
                0 = the in-plane spacing), ``factor`` (> 0: slice spacing / factor), ``sliceThickness``
                (mm; 0 detects it, see :meth:`detectSliceGeometry`), ``quality`` (SR4ZCT: ``fast`` on a
                CPU in minutes, ``faithful`` the paper's, GPU), ``epochs`` (0 = the quality's default),
                ``seed`` (SR4ZCT's initial weights and samples).

        Raises:
            ValueError: the inputs cannot be super-resolved as asked (one sentence).
        """
        params = self.checkedParameters(inputVolume, outputVolume, **parameters)
        return self.startBackendJob({INPUT_ROLE: inputVolume}, [OUTPUT_ROLE], params, device=device, runner=runner)

    def processAsync(
        self,
        inputVolume: vtkMRMLScalarVolumeNode | None,
        outputVolume: vtkMRMLScalarVolumeNode | None = None,
        *,
        scheduler: Any = None,
        **options: Any,
    ) -> TaskRun:
        """Start and return at once (see :meth:`MedFuseLib.task_logic.TaskLogic.processAsync`); ``wait()`` gives the output node."""
        job = self.startJob(inputVolume, outputVolume, **options)
        return self.runJob(job, scheduler, outputVolume=outputVolume)

    def finishJob(
        self, job: BackendTaskJob, outputVolume: vtkMRMLScalarVolumeNode | None = None
    ) -> vtkMRMLScalarVolumeNode:
        """Put a finished job's result into a volume node and release the job's files.

        The output gets the input's study (subject hierarchy) and window/level; the input node is
        not touched. A failed or cancelled job changes nothing in the scene.

        Args:
            job: a job from :meth:`startJob` whose ``done`` is True.
            outputVolume: node to overwrite, or None to add a new "<input> super-resolved" volume.

        Returns:
            The output ``vtkMRMLScalarVolumeNode``.

        Raises:
            RuntimeError: the job is still running, failed (the backend's message) or was cancelled.
        """
        try:
            image: sitk.Image = self.finishedImages(job)[OUTPUT_ROLE]
            inputVolume = job.input_nodes[INPUT_ROLE]
            scene = inputVolume.GetScene()
            name = scene.GenerateUniqueName(f"{inputVolume.GetName()} super-resolved")
            outputVolume = mrml_bridge.image_to_volume_node(
                image, scene, name, node=outputVolume, class_name="vtkMRMLScalarVolumeNode", reference_node=inputVolume
            )
            outputVolume.SetAttribute("MedFuse.task", TASK_NAME)
            outputVolume.SetAttribute("MedFuse.method", str(job.params.get("method", "")))
            outputVolume.SetAttribute("MedFuse.sourceVolumeID", inputVolume.GetID())
            return outputVolume
        finally:
            job.cleanup()

    # --- helpers ----------------------------------------------------------------------------------
    @classmethod
    def _checkVolume(cls, volumeNode: vtkMRMLScalarVolumeNode | None) -> None:
        if volumeNode is None:
            raise ValueError("Select an input volume to super-resolve.")
        cls.checkInputNode(volumeNode, INPUT_ROLE)

    def _grid(self, volumeNode: vtkMRMLScalarVolumeNode) -> VolumeGrid:
        """The volume's grid (size, spacing, recorded thickness) for the backend's rules, without its voxels.

        The backend sees the node's voxel axes in the same IJK order (``mrml_bridge`` writes them
        unchanged), so size and spacing are what the backend will read from the file.
        """
        return self.nodeGrid(volumeNode, self.recordedSliceThickness(volumeNode))

    @staticmethod
    def _anatomicalAxis(volumeNode: vtkMRMLScalarVolumeNode, ijkAxis: int) -> int:
        """0, 1 or 2 (R, A, S): the patient axis closest to the given voxel axis."""
        directions = vtk.vtkMatrix4x4()
        volumeNode.GetIJKToRASDirectionMatrix(directions)
        column = [abs(directions.GetElement(row, ijkAxis)) for row in range(3)]
        return column.index(max(column))


def _positiveFloat(text: str | None) -> float | None:
    try:
        value = float(str(text).split("\\")[0])
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None

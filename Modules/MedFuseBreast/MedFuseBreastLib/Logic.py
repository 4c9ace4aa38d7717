"""Breast mass segmentation of a multi-sequence breast MRI study, computed by the backend's ``breast-mass`` task.

The flow is: assign the study's volumes to roles (T1C master, T2W assistant, pre-contrast; guessed
from series descriptions by :mod:`MedFuseBreastLib.Roles`), check them here (one clear sentence per
problem), pick the DCE phases of a multi-phase series -> optionally align T2W and pre-contrast
rigidly to the T1C through the backend's ``registration`` task -> run ``breast-mass`` out of
process (:class:`MedFuseBreastLib.JobChain.JobChain`, one progress bar and one Cancel for all
steps) -> put the result into the scene under the T1C's study: a segmentation with the coded
"Mass" segment, optionally the five master attention maps as volumes and the aligned sequences.
The research task ``aln-metastasis`` (axillary lymph node metastasis probability) runs the same way
(:meth:`BreastLogic.startAlnJob`). Only MRML and VTK are used (no ``qt``, ``ctk`` or
``slicer.app``), so this runs headless on slicer-core and inside the Slicer application alike.

From Slicer's Python console::

    from MedFuseBreastLib import BreastLogic
    logic = BreastLogic()
    roles = logic.autoAssign(slicer.mrmlScene)  # {"t1c": node, "t2w": node, ...}; ValueError names a missing T1C
    result = logic.process(roles["t1c"], roles.get("t2w"), roles.get("pre"), alignFirst=True)
    print(result.segmentation.GetName(), logic.resultSummary(result.report))

Multi-phase (DCE) series: a volume sequence (its proxy volume selected) or a multi-component
volume gives the phase ``phase`` as T1C and, with ``prePhase``, another phase as pre-contrast.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk
import slicer
from MedFuseLib import mrml_bridge
from MedFuseLib.runner import ProcessRunner
from MedFuseLib.task_logic import TaskLogic
from MedFuseLib.task_models import TaskModels
from MedFuseLib.terminology import loadTerminology

from MedFuseBreastLib.Aln import (
    ALN_DCE_ROLE,
    ALN_MASS_ROLE,
    ALN_T2W_ROLE,
    ALN_TASK,
    AlnResult,
    alnParameters,
    alnResult,
)
from MedFuseBreastLib.JobChain import ChainStep, ImageInputJob, JobChain
from MedFuseBreastLib.Roles import ROLE_TITLES, ROLES, assignRoles
from SlicerMedFuse.facade import (
    DEVICE_CHOICES,
    MASS_LABELS,
    PHANTOM_DATA_NOTE,
    BundleManifest,
    MedFuseError,
    TaskSpec,
    check_mr_role,
    default_model,
)

if TYPE_CHECKING:
    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

__all__ = [
    "DEVICE_CHOICES",
    "SIMULATED_TRAINING_WARNING",
    "TASK_NAME",
    "BreastLogic",
    "BreastMassJob",
    "BreastResult",
    "parameterRange",
    "taskSpec",
]

TASK_NAME = "breast-mass"
OUTPUT_ROLE = "mass"
#: The registration the backend's misalignment message names (SlicerMedFuse.breast.alignment.registration_hint),
#: started from the scanner geometry (identity) instead of the preset's centres of mass: the sequences of one
#: session share the scanner's space, and on the phantom the centre-of-mass start moved a pre-contrast phase
#: that was in register by 13 mm (the enhancing heart shifts the T1C's centre of mass).
RIGID_ALIGNMENT: dict[str, Any] = {
    "preset": "multimodal",
    "linear_stage": "rigid",
    "deformable": False,
    "initialization": "none",
}
ALIGNABLE_ROLES = ("t2w", "pre")
#: Window / level of the attention-map volumes (values 0..1).
ATTENTION_WINDOW_LEVEL = (1.0, 0.5)
ATTENTION_COLOR_NODE_ID = "vtkMRMLColorTableNodeInferno"
#: Voxels read for the CT-instead-of-MR check (a regular subsample of larger volumes).
INTENSITY_SAMPLE_VOXELS = 1_000_000

SIMULATED_TRAINING_WARNING = f"Demo model: {PHANTOM_DATA_NOTE}. Not for clinical use; review the Mass segment."
#: What the backend's misalignment message starts its advice with (SlicerMedFuse.breast.alignment).
_REGISTRATION_ADVICE = "; align it to the T1C first with the registration task"

_log = logging.getLogger(__name__)


def taskSpec() -> TaskSpec:
    """The backend's declaration of the ``breast-mass`` task (inputs, outputs, labels, parameters)."""
    return BreastLogic.spec()


def parameterRange(name: str) -> tuple[float, float]:
    """(minimum, maximum) of a numeric task parameter, e.g. ``parameterRange("threshold")``."""
    return BreastLogic.parameterRange(name)


class BreastMassJob(JobChain):
    """The steps of one breast-mass run; :attr:`alignedImages` holds what the alignment steps produced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alignedImages: dict[str, sitk.Image] = {}


@dataclasses.dataclass
class BreastResult:
    """What :meth:`BreastLogic.finishJob` put into the scene.

    Attributes:
        segmentation: the segmentation with the "Mass" segment, on the T1C grid.
        attentionVolumes: the master attention maps (blocks 1-5), when asked for.
        alignedVolumes: role -> the sequence rigidly aligned to the T1C, when alignment ran.
        report: the backend's job report.
    """

    segmentation: vtkMRMLSegmentationNode
    attentionVolumes: list[vtkMRMLScalarVolumeNode]
    alignedVolumes: dict[str, vtkMRMLScalarVolumeNode]
    report: dict[str, Any]


class BreastLogic(TaskLogic):
    """Runs the backend ``breast-mass`` (and ``aln-metastasis``) tasks on volume nodes.

    Args: those of :class:`MedFuseLib.task_logic.TaskLogic` (runner, python, store, scheduler).
    """

    TASK_NAME = TASK_NAME
    FINISH_OPTIONS = ("segmentationNode",)

    @classmethod
    def attentionRoles(cls) -> tuple[str, ...]:
        """The task's attention-map outputs (``attention_1`` .. ``attention_5``), coarse to fine encoder blocks."""
        return tuple(output.role for output in cls.spec().outputs if output.role.startswith("attention_"))

    @property
    def alnModels(self) -> TaskModels:
        """The research ALN task's model bundles in :attr:`store`."""
        return TaskModels(ALN_TASK, default_model(ALN_TASK) or "", self.store)

    # --- roles ------------------------------------------------------------------------------------
    @staticmethod
    def seriesDescription(volumeNode) -> str:
        """The text roles are guessed from: the node name and, when DICOM import recorded it, the series description."""
        parts = [volumeNode.GetName() or ""]
        scene = volumeNode.GetScene()
        if scene is not None:
            sh = scene.GetSubjectHierarchyNode()
            item = sh.GetItemByDataNode(volumeNode)
            if item != sh.GetInvalidItemID():
                parts.append(sh.GetItemAttribute(item, "DICOM.SeriesDescription") or "")
        parts.append(volumeNode.GetAttribute("DICOM.SeriesDescription") or "")
        return " ".join(part for part in parts if part)

    def autoAssign(self, scene, requireMaster: bool = True) -> dict[str, vtkMRMLScalarVolumeNode]:
        """Role -> volume of the scene whose description suggests it (see :func:`MedFuseBreastLib.Roles.assignRoles`).

        Label maps and the volumes a sequence browser shows are candidates; the items stored inside a
        sequence are not (the browser's proxy volume stands for the series).

        Args:
            scene: the MRML scene to search.
            requireMaster: raise when no volume looks like the T1C (the master sequence); the panel
                passes False and asks the user instead.

        Raises:
            ValueError: ``requireMaster`` and no T1C was recognised (one sentence on how to assign it).
        """
        volumes = [
            node
            for node in (
                scene.GetNthNodeByClass(n, "vtkMRMLScalarVolumeNode")
                for n in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode"))
            )
            if not node.IsA("vtkMRMLLabelMapVolumeNode")
        ]
        byId = {node.GetID(): node for node in volumes}
        assigned = assignRoles((node.GetID(), self.seriesDescription(node)) for node in volumes)
        roles = {role: byId[nodeId] for role, nodeId in assigned.items()}
        if requireMaster and "t1c" not in roles:
            names = ", ".join(f"'{node.GetName()}'" for node in volumes) or "none"
            raise ValueError(
                f"No volume's name or series description marks it as the T1C (post-contrast T1) among the scene's "
                f"volumes ({names}); rename it to include 'T1C', 'post' or 'DCE', or pass it yourself: "
                "logic.process(slicer.util.getNode('NAME'))."
            )
        return roles

    # --- phases -----------------------------------------------------------------------------------
    @staticmethod
    def _sequenceOf(volumeNode):
        """The volume sequence whose browser shows ``volumeNode`` (its proxy), or None."""
        scene = volumeNode.GetScene() if volumeNode is not None else None
        if scene is None:
            return None
        for n in range(scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode")):
            browser = scene.GetNthNodeByClass(n, "vtkMRMLSequenceBrowserNode")
            if browser.IsProxyNodeID(volumeNode.GetID()):
                return browser.GetSequenceNode(volumeNode)
        return None

    @classmethod
    def phaseCount(cls, volumeNode) -> int:
        """Phases of a multi-phase series: items of its volume sequence, or voxel components; 1 for a plain volume."""
        if volumeNode is None:
            return 0
        sequence = cls._sequenceOf(volumeNode)
        if sequence is not None:
            return int(sequence.GetNumberOfDataNodes())
        imageData = volumeNode.GetImageData()
        return int(imageData.GetNumberOfScalarComponents()) if imageData is not None else 1

    @classmethod
    def _phase(cls, volumeNode, phase: int | None, title: str, setting: str):
        """The 3D phase of a volume: the node itself, a sequence item node, or an image (one component)."""
        count = cls.phaseCount(volumeNode)
        if count == 1:
            return volumeNode
        name = volumeNode.GetName()
        if phase is None:
            raise ValueError(
                f"The {title} '{name}' is a multi-phase series ({count} phases); choose its phase (0 to {count - 1}) "
                f"in '{setting}'."
            )
        if not 0 <= phase < count:
            raise ValueError(f"The {title} '{name}' has phases 0 to {count - 1}; phase {phase} is not one of them.")
        sequence = cls._sequenceOf(volumeNode)
        if sequence is not None:
            return sequence.GetNthDataNode(int(phase))
        return sitk.VectorIndexSelectionCast(mrml_bridge.volume_node_to_image(volumeNode), int(phase))

    # --- models -----------------------------------------------------------------------------------
    @staticmethod
    def modelWarnings(manifest: BundleManifest) -> list[str]:
        """Warnings shown beside a model: that it was trained on phantoms, when it was."""
        return [SIMULATED_TRAINING_WARNING] if manifest.simulated_training else []

    # --- inputs -----------------------------------------------------------------------------------
    def resolveInputs(
        self, t1cNode, t2wNode=None, preNode=None, *, phase: int | None = None, prePhase: int | None = None
    ) -> dict[str, Any]:
        """The 3D input of each role (a node, or an image for one phase of a multi-component volume), checked.

        Args:
            t1cNode: the contrast-enhanced T1 (master, required); may be a multi-phase DCE series.
            t2wNode: the T2W (optional).
            preNode: the pre-contrast T1 (optional); may be a multi-phase series.
            phase: the T1C phase of a multi-phase T1C series (0-based).
            prePhase: the pre-contrast phase: of ``preNode`` when it is multi-phase, else of the T1C
                series when no ``preNode`` is given.

        Raises:
            ValueError: one sentence naming the problem and the fix (missing master, one node in two
                roles, no voxels, a single slice, a multi-phase series without a phase, a multi-phase
                T2W, equal T1C and pre-contrast phases, a CT given for an MR role).
        """
        if t1cNode is None:
            raise ValueError(
                "Select the contrast-enhanced T1 (T1C): it is the master sequence; T2W and pre-contrast are optional."
            )
        given = {role: node for role, node in zip(ROLES, (t1cNode, t2wNode, preNode), strict=True) if node is not None}
        for role, node in given.items():
            self.checkInputNode(node, role, phases=True)  # a multi-phase series is checked by _phase
            for other in ROLES[ROLES.index(role) + 1 :]:
                if given.get(other) is node:
                    raise ValueError(
                        f"'{node.GetName()}' is selected as both {ROLE_TITLES[role]} and {ROLE_TITLES[other]}; "
                        "give each role its own sequence."
                    )
        resolved = {"t1c": self._phase(t1cNode, phase, ROLE_TITLES["t1c"], "T1C phase")}
        if preNode is not None:
            resolved["pre"] = self._phase(preNode, prePhase, ROLE_TITLES["pre"], "Pre-contrast phase")
        elif prePhase is not None and self.phaseCount(t1cNode) > 1:
            if prePhase == phase:
                raise ValueError(
                    f"The T1C phase and the pre-contrast phase are both {phase}; choose the phase before contrast "
                    "arrives as pre-contrast."
                )
            resolved["pre"] = self._phase(t1cNode, prePhase, ROLE_TITLES["pre"], "Pre-contrast phase")
        if t2wNode is not None:
            if self.phaseCount(t2wNode) > 1:
                raise ValueError(
                    f"The T2W '{t2wNode.GetName()}' holds {self.phaseCount(t2wNode)} volumes; select a single T2W volume."
                )
            resolved["t2w"] = t2wNode
        for role, item in resolved.items():
            self._checkMagnetic(item, role, given.get(role, t1cNode).GetName())
        return {role: resolved[role] for role in ROLES if role in resolved}

    @staticmethod
    def _checkMagnetic(item, role: str, name: str) -> None:
        """ValueError when ``item`` (a node or an image) has CT intensities (the backend's rule, on a subsample)."""
        if isinstance(item, sitk.Image):
            voxels = sitk.GetArrayViewFromImage(item)
        else:
            voxels = slicer.util.arrayFromVolume(item)
        step = max(1, math.ceil((voxels.size / INTENSITY_SAMPLE_VOXELS) ** (1.0 / 3.0)))
        sample = sitk.GetImageFromArray(np.ascontiguousarray(voxels[::step, ::step, ::step]))
        try:
            check_mr_role(sample, role, ROLE_TITLES[role])
        except MedFuseError as error:
            raise ValueError(error.message.replace(f"Input '{role}'", f"The {ROLE_TITLES[role]} '{name}'")) from None

    # --- running ----------------------------------------------------------------------------------
    def startJob(
        self,
        t1cNode,
        t2wNode=None,
        preNode=None,
        *,
        phase: int | None = None,
        prePhase: int | None = None,
        alignFirst: bool = False,
        attentionMaps: bool = False,
        threshold: float | None = None,
        maxMisalignmentMm: float | None = None,
        model: str | os.PathLike | None = None,
        device: str = "auto",
        runner: ProcessRunner | None = None,
    ) -> BreastMassJob:
        """Validate and start the backend; returns at once. Poll the job, then call :meth:`finishJob`.

        Args:
            t1cNode, t2wNode, preNode, phase, prePhase: the study, see :meth:`resolveInputs` (never modified).
            alignFirst: first align T2W and pre-contrast rigidly to the T1C (registration task,
                multimodal preset, rigid only), then segment with the aligned sequences.
            attentionMaps: also return the master attention maps of the five encoder blocks.
            threshold: mass probability at or above which a voxel is labelled; None = task default.
            maxMisalignmentMm: largest tolerated shift of T2W / pre-contrast against the T1C; None = task default.
            model: bundle id (``id`` or ``id@version``) or bundle folder; None = the default (demo) model.
            device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
            runner: overrides the logic's process runner for this job.

        Raises:
            ValueError: an input, the model or a parameter is unusable (one sentence).
        """
        inputs = self.resolveInputs(t1cNode, t2wNode, preNode, phase=phase, prePhase=prePhase)
        manifest = self.models.resolve(model)
        params = self.taskParameters(
            attentionMaps=attentionMaps, threshold=threshold, maxMisalignmentMm=maxMisalignmentMm
        )
        outputs = [OUTPUT_ROLE, *(self.attentionRoles() if attentionMaps else ())]
        options = {"device": device, "runner": self.jobRunner(runner), "python": self.python}
        userNodes = {
            role: node for role, node in zip(ROLES, (t1cNode, t2wNode, preNode), strict=True) if node is not None
        }
        steps = [
            ChainStep(f"aligning the {ROLE_TITLES[role]} to the T1C", 1.0, self._alignmentStep(inputs, role, options))
            for role in ALIGNABLE_ROLES
            if alignFirst and role in inputs
        ]

        def segmentation(previous: list) -> ImageInputJob:
            aligned = {
                role: previous[k].result_images()["warped"]
                for k, role in enumerate(r for r in ALIGNABLE_ROLES if alignFirst and r in inputs)
            }
            chain.alignedImages.update(aligned)
            return _job(TASK_NAME, {**inputs, **aligned}, outputs, params, model=str(manifest.folder), **options)

        steps.append(ChainStep("segmenting the mass", 2.0, segmentation))
        chain = BreastMassJob(steps, userNodes)
        chain.start()
        return chain

    @staticmethod
    def _alignmentStep(inputs: Mapping[str, Any], role: str, options: Mapping[str, Any]):
        def build(previous: list) -> ImageInputJob:
            return _job(
                "registration", {"fixed": inputs["t1c"], "moving": inputs[role]}, ["warped"], RIGID_ALIGNMENT, **options
            )

        return build

    def finishJob(self, job: BreastMassJob, segmentationNode=None) -> BreastResult:
        """Put a finished job's result into the scene (under the T1C's study) and release the job's files.

        Creates (or overwrites the segments of) a segmentation with the coded "Mass" segment on the
        T1C grid, and, when they were computed, the attention maps and the aligned sequences as new
        volumes. A failed or cancelled job changes nothing in the scene.

        Raises:
            RuntimeError: the job is still running, failed (the panel's sentence, see
                :meth:`failureMessage`) or was cancelled.
        """
        if not job.done:
            raise RuntimeError("The breast mass job is still running; wait for it or cancel it first.")
        try:
            if not job.succeeded:
                raise RuntimeError(self.failureMessage(job.error_message))
            images = job.result_images()
            t1cNode = job.input_nodes["t1c"]
            scene = t1cNode.GetScene()
            loadTerminology()  # so Slicer lists the segment's codes; no-op without the application
            segmentationNode = mrml_bridge.labelmap_to_segmentation(
                images[OUTPUT_ROLE],
                MASS_LABELS,
                scene,
                scene.GenerateUniqueName(f"{t1cNode.GetName()} mass"),
                reference_node=t1cNode,
                node=segmentationNode,
            )
            modelName = TaskModels.reference(self.models.resolve(job.model)) if job.model else ""
            for key, value in (("task", TASK_NAME), ("model", modelName), ("sourceVolumeID", t1cNode.GetID())):
                segmentationNode.SetAttribute(f"MedFuse.{key}", value)
            attention = [
                self._attentionVolume(images[role], t1cNode, f"{t1cNode.GetName()} attention {role.split('_')[1]}")
                for role in self.attentionRoles()
                if role in images
            ]
            aligned = {role: self._alignedVolume(image, job, role) for role, image in job.alignedImages.items()}
            return BreastResult(segmentationNode, attention, aligned, dict(job.report))
        finally:
            job.cleanup()

    @staticmethod
    def _alignedVolume(image: sitk.Image, job: BreastMassJob, role: str):
        """A new volume under the T1C's study; a pre-contrast phase taken from the T1C series is named after it."""
        t1cNode = job.input_nodes["t1c"]
        source = job.input_nodes.get(role)
        name = f"{source.GetName()} aligned to T1C" if source else f"{t1cNode.GetName()} {ROLE_TITLES[role]} aligned"
        scene = t1cNode.GetScene()
        node = mrml_bridge.image_to_volume_node(
            image, scene, scene.GenerateUniqueName(name), reference_node=source or t1cNode
        )
        mrml_bridge.place_under_study(node, t1cNode)
        return node

    @staticmethod
    def _attentionVolume(image: sitk.Image, t1cNode, name: str):
        scene = t1cNode.GetScene()
        node = mrml_bridge.image_to_volume_node(image, scene, scene.GenerateUniqueName(name), reference_node=t1cNode)
        display = node.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(*ATTENTION_WINDOW_LEVEL)
        if scene.GetNodeByID(ATTENTION_COLOR_NODE_ID) is not None:
            display.SetAndObserveColorNodeID(ATTENTION_COLOR_NODE_ID)
        return node

    @staticmethod
    def failureMessage(message: str) -> str:
        """The backend's sentence for the panel: its command-line advice on misalignment becomes the panel's option."""
        if _REGISTRATION_ADVICE not in message:
            return message
        return (
            message.split(_REGISTRATION_ADVICE, 1)[0]
            + "; check 'Align sequences first' to align it rigidly to the T1C (registration task), then apply again."
        )

    @staticmethod
    def resultSummary(report: Mapping[str, Any]) -> str:
        """One line for the panel: mass volume and slice range, the sequences used, the run time; then the warnings."""
        mass = report.get("mass", {})
        volume, slices = float(mass.get("volume_ml", 0.0)), mass.get("slices") or []
        seconds = float(report.get("timings_s", {}).get("total", 0.0))
        took = f" in {seconds:.0f} s" if seconds > 0 else ""
        used = ", ".join(role.upper() for role, present in report.get("channels_present", {}).items() if present)
        found = (
            f"{volume:.2f} mL of mass on slices {slices[0]}-{slices[1]}"
            if volume > 0 and len(slices) == 2
            else "no mass found"
        )
        line = (
            f"Done{took}: {found}"
            + (f" (sequences used: {used})" if used else "")
            + "; review and correct the segment."
        )
        return "\n".join([line, *report.get("warnings", [])])

    # --- ALN metastasis (research) ------------------------------------------------------------------
    def startAlnJob(
        self,
        dceNode,
        t2wNode=None,
        massNode=None,
        *,
        clinical: Mapping[str, Any],
        model: str | os.PathLike | None = None,
        device: str = "auto",
        runner: ProcessRunner | None = None,
    ) -> ImageInputJob:
        """Start the ``aln-metastasis`` task; poll the job, then read it with :meth:`finishAlnJob`.

        Args:
            dceNode: the DCE / post-contrast T1 (required; a single phase).
            t2wNode: the T2W (optional).
            massNode: the lesion to crop around (optional): a segmentation (its "Mass" segment, e.g.
                this panel's result) or a label map volume.
            clinical: the ten clinical values by task parameter name (:data:`MedFuseBreastLib.Aln.CLINICAL_FIELDS`).
            model: bundle id or folder; None = the default ALN model.

        Raises:
            ValueError: a missing sequence or clinical value, a value out of range, no model (one sentence).
        """
        if dceNode is None:
            raise ValueError("Select the DCE / post-contrast T1 for the ALN model; the T2W is optional.")
        inputs = {ALN_DCE_ROLE: self.resolveInputs(dceNode)["t1c"]}
        if t2wNode is not None:
            inputs[ALN_T2W_ROLE] = self.resolveInputs(dceNode, t2wNode)["t2w"]
        if massNode is not None:
            inputs[ALN_MASS_ROLE] = self._lesionLabelmap(massNode, dceNode)
        params = alnParameters(clinical)
        manifest = self.alnModels.resolve(model)
        job = _job(
            ALN_TASK,
            inputs,
            [],
            params,
            model=str(manifest.folder),
            device=device,
            runner=self.jobRunner(runner),
            python=self.python,
        )
        job.start()
        return job

    @staticmethod
    def _lesionLabelmap(massNode, referenceNode):
        if massNode.IsA("vtkMRMLSegmentationNode"):
            if not massNode.GetSegmentation().GetSegmentIdBySegmentName(MASS_LABELS[0].name):
                raise ValueError(
                    f"The segmentation '{massNode.GetName()}' has no '{MASS_LABELS[0].name}' segment; segment the mass first."
                )
            return mrml_bridge.segmentation_to_labelmap(massNode, referenceNode, MASS_LABELS)
        return massNode

    @staticmethod
    def finishAlnJob(job) -> AlnResult:
        """The probability (with the model's intended use) of a finished ALN job; releases its files.

        Raises:
            RuntimeError: the job is still running, failed (the backend's sentence) or was cancelled.
            ValueError: the report lacks the ALN result.
        """
        if not job.done:
            raise RuntimeError("The ALN job is still running; wait for it or cancel it first.")
        try:
            if not job.succeeded:
                raise RuntimeError(job.error_message or "The ALN job failed without a message.")
            return alnResult(job.report)
        finally:
            job.cleanup()


def _job(
    task: str, inputs: Mapping[str, Any], outputs: list[str], params: Mapping[str, Any], **options: Any
) -> ImageInputJob:
    """A backend job (not started) whose inputs are nodes or images."""
    nodes = {role: item for role, item in inputs.items() if not isinstance(item, sitk.Image)}
    images = {role: item for role, item in inputs.items() if isinstance(item, sitk.Image)}
    return ImageInputJob(task, nodes, outputs, params, input_images=images, **options)

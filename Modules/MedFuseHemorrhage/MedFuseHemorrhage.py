"""MedFuse Hemorrhage: epidural, intraparenchymal, intraventricular, subarachnoid and subdural bleeds on head CT.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseHemorrhageLib.HemorrhageLogic`, which runs the backend's ``hemorrhage`` task out of
process and needs no Qt (see that package for scripting from the Python console).
"""

from typing import Annotated

import slicer
from MedFuseHemorrhageLib import (
    DEVICE_CHOICES,
    DISPLAY_WINDOWS,
    EDH_NOTE,
    HemorrhageLogic,
    parameterRange,
    taskSpec,
)
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.model_selector import ModelSelector
from MedFuseLib.panel import MedFusePanelWidget
from MedFuseLib.self_test import MedFuseSelfTest
from MedFuseLib.terminology import loadTerminology
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic

#
# MedFuseHemorrhage
#


class MedFuseHemorrhage(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedFuse Hemorrhage")
        self.parent.categories = ["MedFuse"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerMedFuse contributors"]
        self.parent.helpText = _(
            "Segments intracranial hemorrhage on a non-contrast head CT into the five BHSD classes: "
            "epidural (EDH), intraparenchymal (IPH), intraventricular (IVH), subarachnoid (SAH) and "
            "subdural (SDH). The result is a segmentation with one named, coloured and coded segment per "
            "class (empty classes included, so they can be painted), a table with each class's volume "
            "(mL), number of components and slice range, and the CT shown in a brain window. Correct the "
            "result with the embedded segment editor.<br><br>"
            "<b>Models:</b> the network comes from a model bundle installed in the MedFuse model store "
            "(<tt>medfuse models install ID</tt>, or a bundle folder dropped into the store). The panel "
            "shows each model's licence and intended use. The demo model is trained on simulated bleeds "
            "painted into one real head CT and is <b>not for clinical use</b>.<br><br>"
            "The CT is never modified (only its display window). Computation runs in a separate process "
            "and can be cancelled. See the "
            '<a href="https://github.com/SlicerMedFuse/SlicerMedFuse#readme">SlicerMedFuse documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Task and labels: Wu et al., BHSD: A 3D Multi-class Brain Hemorrhage Segmentation Dataset, "
            "MLMI 2023. Network: nnU-Net-style 3D U-Net (Isensee et al., Nat. Methods 2021) built with "
            "MONAI. Built on 3D Slicer, SimpleITK, MONAI and PyTorch; the module layout follows Slicer's "
            "scripted module template and KitwareMedical/SlicerNNUnet."
        )


#
# MedFuseHemorrhageParameterNode
#


@parameterNodeWrapper
class MedFuseHemorrhageParameterNode:
    """What the panel shows, saved with the scene. Defaults and ranges come from the backend's task declaration.

    inputVolume - head CT in HU (only its display window changes).
    model - installed model as ``id@version``; empty = the default (demo) model.
    device - where the network runs.
    mirroring - average over left-right mirrored copies (test-time augmentation).
    minComponentMl - components of a class smaller than this (mL) are removed.
    modelPostprocessing - also remove components below the model's own per-class minimum volumes.
    overlap - sliding-window overlap (fraction of the patch).
    displayWindow - CT window applied with the result (brain W80 L40, blood W160 L40).
    outputSegmentation - segmentation that receives the segments; None creates one at Apply.
    outputTable - table that receives the per-class volumes; None creates one at Apply.
    """

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    model: str = ""
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    mirroring: bool = bool(taskSpec().parameter("mirroring").default)
    minComponentMl: Annotated[float, WithinRange(*parameterRange("min_component_ml"))] = float(
        taskSpec().parameter("min_component_ml").default
    )
    modelPostprocessing: bool = bool(taskSpec().parameter("model_postprocessing").default)
    overlap: Annotated[float, WithinRange(*parameterRange("overlap"))] = float(taskSpec().parameter("overlap").default)
    displayWindow: Annotated[str, Choice(list(DISPLAY_WINDOWS))] = "brain"
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    outputTable: slicer.vtkMRMLTableNode


#
# MedFuseHemorrhageWidget
#


class MedFuseHemorrhageWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, model choice, Apply/Cancel, progress, table and segment editor."""

    START_FAILED_MESSAGE = _("Hemorrhage segmentation could not start.")
    JOB_FAILED_MESSAGE = _("Hemorrhage segmentation failed.")
    SEGMENT_EDITOR_SINGLETON_TAG = "MedFuseHemorrhageSegmentEditor"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._modelSelector = None
        self._inputCheck = (None, "")

    def _createLogic(self) -> "MedFuseHemorrhageLogic":
        return MedFuseHemorrhageLogic()

    def _setupPanel(self) -> None:
        loadTerminology()  # segment codes listed by Slicer's terminology selector
        self.ui.refreshModelsButton.connect("clicked(bool)", self.refreshModels)
        self._modelSelector = ModelSelector(
            self.ui.modelComboBox,
            self.logic.hemorrhage.models,
            "model",
            self.ui.modelInfoLabel,
            self.ui.modelWarningLabel,
            HemorrhageLogic.modelWarnings,
        )
        self.ui.modelComboBox.connect(
            "currentIndexChanged(int)", lambda index: self._modelSelector.onSelected(index, self._parameterNode)
        )
        self.ui.edhNoteLabel.text = EDH_NOTE
        # The CT is the source volume, set when a result arrives.
        self._embedSegmentEditor(self.ui.segmentEditorWidget, self.SEGMENT_EDITOR_SINGLETON_TAG)

    def _refreshPanel(self) -> None:
        self.refreshModels()

    # --- parameter node ---------------------------------------------------------------------------
    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        self.ui.inputCheckLabel.text = self._inputCheckText()
        self._modelSelector.show(self._parameterNode)
        self._updateApplyButton()

    def _inputCheckText(self) -> str:
        parameters = self._parameterNode
        if not parameters or not parameters.inputVolume:
            return _("Select a head CT.")
        volume = parameters.inputVolume
        imageData = volume.GetImageData()
        # The check reads a voxel sample: redo it only when the volume or its voxels changed.
        key = (volume.GetID(), imageData.GetMTime() if imageData else 0, tuple(volume.GetSpacing()))
        if self._inputCheck[0] != key:
            try:
                warnings = self.logic.hemorrhage.checkInput(volume)
                spacing = " x ".join(f"{s:.3g}" for s in volume.GetSpacing())
                text = "\n".join([_("CT in HU, voxels {spacing} mm.").format(spacing=spacing), *warnings])
            except ValueError as error:
                text = str(error)
            self._inputCheck = (key, text)
        return self._inputCheck[1]

    # --- models -----------------------------------------------------------------------------------
    def refreshModels(self) -> None:
        """List the installed hemorrhage models in the model selector."""
        self._modelSelector.refresh(self._parameterNode)
        self._updateApplyButton()

    def _applyButtonState(self) -> tuple[bool, str]:
        hasInput = bool(self._parameterNode and self._parameterNode.inputVolume)
        hasModel = self.ui.modelComboBox.count > 0
        if not hasModel:
            return False, _("Install a hemorrhage model first (see the Model section).")
        if not hasInput:
            return False, _("Select a head CT.")
        return True, _("Segment the hemorrhage in the selected CT.")

    def _sectionsLockedWhileRunning(self) -> tuple:
        return (
            self.ui.inputsCollapsibleButton,
            self.ui.modelCollapsibleButton,
            self.ui.advancedCollapsibleButton,
            self.ui.outputsCollapsibleButton,
            self.ui.correctionCollapsibleButton,
        )

    # --- running ----------------------------------------------------------------------------------
    def _outputNodes(self) -> tuple:
        return (self._parameterNode.outputSegmentation, self._parameterNode.outputTable)

    def _startJob(self):
        return self.logic.startJob(self._parameterNode)

    def _finishJob(self, job, segmentationNode, tableNode) -> None:
        window = self._parameterNode.displayWindow if self._parameterNode else "brain"
        ctNode = job.input_nodes["ct"]
        segmentationNode, tableNode = self.logic.finishJob(job, segmentationNode, tableNode, window=window)
        if self._parameterNode:
            self._parameterNode.outputSegmentation = segmentationNode
            self._parameterNode.outputTable = tableNode
        warnings = [w for w in job.report.get("warnings", []) if w not in self.ui.modelWarningLabel.text]
        self.ui.statusLabel.text = "\n".join([HemorrhageLogic.resultSummary(tableNode, job.report), *warnings])
        self._showResult(ctNode, segmentationNode, tableNode)

    def _showResult(self, ctNode, segmentationNode, tableNode) -> None:
        """CT in the slice views with the segments over it, the table in the panel, the editor ready."""
        slicer.util.setSliceViewerLayers(background=ctNode, foreground=None, label=None, fit=True)
        self.ui.volumesTableView.setMRMLTableNode(tableNode)
        self._segmentEditor.edit(segmentationNode, ctNode)
        self.ui.resultsCollapsibleButton.collapsed = False
        self.ui.correctionCollapsibleButton.collapsed = False


#
# MedFuseHemorrhageLogic
#


class MedFuseHemorrhageLogic(ScriptedLoadableModuleLogic):
    """The module's logic: owns the parameter node and delegates the work to :class:`HemorrhageLogic`.

    Args:
        hemorrhage: the Lib logic to delegate to; default one on the user's model store.
    """

    def __init__(self, hemorrhage: HemorrhageLogic | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.hemorrhage = hemorrhage or HemorrhageLogic()

    def getParameterNode(self) -> MedFuseHemorrhageParameterNode:
        return MedFuseHemorrhageParameterNode(super().getParameterNode())

    def startJob(self, parameters: MedFuseHemorrhageParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`HemorrhageLogic.startJob`."""
        return self.hemorrhage.startJob(
            parameters.inputVolume,
            model=parameters.model or None,
            device=parameters.device,
            mirroring=parameters.mirroring,
            minComponentMl=parameters.minComponentMl,
            modelPostprocessing=parameters.modelPostprocessing,
            overlap=parameters.overlap,
        )

    def finishJob(self, job, segmentationNode=None, tableNode=None, window: str = "brain"):
        return self.hemorrhage.finishJob(job, segmentationNode, tableNode, window=window)

    def process(self, ctNode, model=None, **options):
        """Blocking run for scripts; see :meth:`HemorrhageLogic.process`. Returns (segmentationNode, tableNode)."""
        return self.hemorrhage.process(ctNode, model, **options)


#
# MedFuseHemorrhageTest
#


class MedFuseHemorrhageTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a synthetic head CT through the real backend."""

    TESTS = ("test_MRIsRejected", "test_SyntheticHeadIsSegmented")

    @staticmethod
    def _syntheticHead(name: str, air: int = -1000, brain: int = 35, bone: int = 1200):
        """A 96 x 96 x 40 head-like volume (2 mm voxels): air, an ellipsoidal skull, brain, and one 65 HU blob."""
        import numpy as np

        k, j, i = np.mgrid[0:40, 0:96, 0:96].astype(float)
        radius = np.sqrt(((i - 47.5) / 38) ** 2 + ((j - 47.5) / 44) ** 2 + ((k - 19.5) / 30) ** 2)
        voxels = np.full(radius.shape, air, dtype=np.int16)
        voxels[radius < 1.0] = bone
        voxels[radius < 0.9] = brain
        blob = np.sqrt((i - 35) ** 2 + (j - 45) ** 2 + (k - 20) ** 2) < 5
        voxels[blob] = brain + 30
        volume = slicer.util.addVolumeFromArray(voxels, name=name)
        volume.SetSpacing(2.0, 2.0, 2.0)
        return volume

    def test_MRIsRejected(self) -> None:
        mr = self._syntheticHead("MR-like", air=0, brain=400, bone=80)
        with self.assertRaises(ValueError) as raised:
            HemorrhageLogic().checkInput(mr)
        self.assertIn("Hounsfield", str(raised.exception))
        self.delayDisplay("Test passed")

    def test_SyntheticHeadIsSegmented(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest("the backend's packages are not installed (" + ", ".join(missing) + ")")
        logic = HemorrhageLogic()
        if logic.defaultModel() is None:
            self.skipTest(logic.noModelMessage())
        self.delayDisplay("Segmenting a synthetic head CT with the default model")
        ct = self._syntheticHead("synthetic head")
        before = slicer.util.arrayFromVolume(ct).copy()

        segmentation, table = MedFuseHemorrhageLogic().process(ct, device="cpu")

        names = [segment.GetName() for segment in (segmentation.GetSegmentation().GetNthSegment(n) for n in range(5))]
        self.assertEqual(names, [label.name for label in taskSpec().labels])
        self.assertEqual(table.GetNumberOfRows(), 5)
        self.assertTrue((slicer.util.arrayFromVolume(ct) == before).all(), "the CT was modified")
        self.assertEqual(ct.GetDisplayNode().GetWindow(), DISPLAY_WINDOWS["brain"][0])
        self.delayDisplay("Test passed")

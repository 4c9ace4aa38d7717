"""MedFuse Registration: training-free deformable registration of two volumes, same or different contrast.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseRegistrationLib.RegistrationLogic`, which runs the backend's ``registration`` task out
of process and needs no Qt (see that package for scripting from the Python console).
"""

from typing import Annotated

import qt
import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.panel import MedFusePanelWidget
from MedFuseLib.self_test import MedFuseSelfTest
from MedFuseRegistrationLib import (
    DEVICE_CHOICES,
    PANEL_PARAMETERS,
    RegistrationLogic,
    builtinPresetValues,
    defaultPresetDirectory,
    panelValues,
    parameterChoices,
    parameterRange,
)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic

#
# MedFuseRegistration
#


class MedFuseRegistration(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedFuse Registration")
        self.parent.categories = ["MedFuse"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerMedFuse contributors"]
        self.parent.helpText = _(
            "Aligns a moving volume to a fixed one: centre of mass, rigid and affine stages, then a dense "
            "deformation optimised for this pair (no trained model, no training data; CPU or GPU). Same "
            "contrast (follow-up scans): the <i>fast</i> or <i>accurate</i> preset (LNCC similarity), or "
            "<i>diffeomorphic</i> when the mapping must not fold; "
            "different contrasts or modalities (T1/T2, CT/MR): the <i>multimodal</i> preset (MIND-SSC).<br><br>"
            "<b>Outputs:</b> a grid transform (moving to fixed) that holds the whole mapping, with the fixed "
            "and moving volumes as references; put the moving volume or anything drawn on it under the "
            "transform to see it aligned. Optionally the moving volume resampled onto the fixed grid, and a "
            "registered copy of a segmentation of the moving volume on the fixed grid (label-aware "
            "interpolation; where segments overlap, the later one wins).<br><br>"
            "<b>Presets:</b> change the Advanced settings and save them as your own preset; presets are "
            "kept in your Slicer settings folder and also work on the command line.<br><br>"
            "The input volumes and segmentation are never modified. Computation runs in a separate process "
            "and can be cancelled. See the "
            '<a href="https://github.com/SlicerMedFuse/SlicerMedFuse#readme">SlicerMedFuse documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Methods: Mok et al., Deformable Medical Image Registration Under Distribution Shifts with Neural "
            "Instance Optimization (MLMI 2023); Ehrhardt and Handels, Implicitly Solved Regularization for "
            "Learning-Based Image Registration (MLMI 2023); Heinrich et al., MIND-SSC (MICCAI 2013). Built on "
            "3D Slicer, SimpleITK, MONAI and PyTorch; the module layout follows Slicer's scripted module template."
        )


#
# MedFuseRegistrationParameterNode
#

_FAST = panelValues(builtinPresetValues("fast"))


@parameterNodeWrapper
class MedFuseRegistrationParameterNode:
    """What the panel shows, saved with the scene. Choices and ranges come from the backend's task declaration.

    fixedVolume, movingVolume - the pair (never modified).
    fixedMask, movingMask - optional label maps restricting the similarity.
    preset - built-in or saved preset the Advanced values started from.
    similarity, regularizer, levels, iterations, diffeomorphic - Advanced values (the preset's unless changed).
    device - where the optimisation runs.
    outputTransform - grid transform that receives the result; None creates one.
    createResampledVolume, outputVolume - whether to compute the resampled moving volume, and where.
    movingSegmentation - optional segmentation of the moving volume to carry over.
    outputSegmentation - segmentation that receives the registered segments; None creates one.
    labelInterpolation - how the segments are interpolated.
    """

    fixedVolume: slicer.vtkMRMLScalarVolumeNode
    movingVolume: slicer.vtkMRMLScalarVolumeNode
    fixedMask: slicer.vtkMRMLLabelMapVolumeNode
    movingMask: slicer.vtkMRMLLabelMapVolumeNode
    preset: str = "fast"
    similarity: Annotated[str, Choice(list(parameterChoices("similarity")))] = _FAST["similarity"]
    regularizer: Annotated[str, Choice(list(parameterChoices("regularizer")))] = _FAST["regularizer"]
    levels: Annotated[int, WithinRange(*(int(v) for v in parameterRange("levels")))] = int(_FAST["levels"])
    iterations: str = _FAST["iterations"]
    diffeomorphic: bool = bool(_FAST["diffeomorphic"])
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    outputTransform: slicer.vtkMRMLGridTransformNode
    createResampledVolume: bool = True
    outputVolume: slicer.vtkMRMLScalarVolumeNode
    movingSegmentation: slicer.vtkMRMLSegmentationNode
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    labelInterpolation: Annotated[str, Choice(list(parameterChoices("label_interpolation")))] = "label"


#
# MedFuseRegistrationWidget
#


class MedFuseRegistrationWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, presets, Apply/Cancel, progress, and the result in the views."""

    START_FAILED_MESSAGE = _("Registration could not start.")
    JOB_FAILED_MESSAGE = _("Registration failed.")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._updatingPresets = False

    def _createLogic(self) -> "MedFuseRegistrationLogic":
        return MedFuseRegistrationLogic()

    def _setupPanel(self) -> None:
        self.ui.presetComboBox.connect("currentIndexChanged(int)", self._onPresetSelected)
        self.ui.savePresetButton.connect("clicked(bool)", self.onSavePreset)
        self.ui.deletePresetButton.connect("clicked(bool)", self.onDeletePreset)
        self.ui.resetAdvancedButton.connect("clicked(bool)", self.onResetAdvanced)

    def _refreshPanel(self) -> None:
        self.refreshPresets()

    # --- parameter node ---------------------------------------------------------------------------
    def _chooseDefaultInputs(self) -> None:
        parameters = self._parameterNode
        if not parameters.fixedVolume or not parameters.movingVolume:
            volumes = [
                volume
                for volume in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")
                if not volume.IsA("vtkMRMLLabelMapVolumeNode")
            ]
            if len(volumes) >= 2 and not parameters.fixedVolume and not parameters.movingVolume:
                parameters.fixedVolume, parameters.movingVolume = volumes[0], volumes[1]

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        self.ui.inputCheckLabel.text = self._inputCheckText()
        self.ui.outputVolumeSelector.enabled = bool(parameters and parameters.createResampledVolume)
        hasSegmentation = bool(parameters and parameters.movingSegmentation)
        self.ui.outputSegmentationSelector.enabled = hasSegmentation
        self.ui.labelInterpolationComboBox.enabled = hasSegmentation
        self._selectPresetInCombo()
        self._updateApplyButton()

    def _inputCheckText(self) -> str:
        parameters = self._parameterNode
        if not parameters or not parameters.fixedVolume or not parameters.movingVolume:
            return _("Select a fixed and a moving volume.")
        try:
            RegistrationLogic.checkVolume(parameters.fixedVolume, "fixed")
            RegistrationLogic.checkVolume(parameters.movingVolume, "moving")
        except ValueError as error:
            return str(error)
        if parameters.fixedVolume is parameters.movingVolume:
            return _("Select two different volumes.")
        spacing = lambda node: " x ".join(f"{s:.3g}" for s in node.GetSpacing())  # noqa: E731
        return _("Fixed voxels {fixed} mm; moving voxels {moving} mm.").format(
            fixed=spacing(parameters.fixedVolume), moving=spacing(parameters.movingVolume)
        )

    # --- presets ----------------------------------------------------------------------------------
    def refreshPresets(self) -> None:
        """List the built-in and the user's presets in the preset selector."""
        combo = self.ui.presetComboBox
        self._updatingPresets = True
        try:
            combo.clear()
            for name in self.logic.registration.presetNames():
                user = self.logic.registration.isUserPreset(name)
                combo.addItem(_("{name} (yours)").format(name=name) if user else name, name)
        finally:
            self._updatingPresets = False
        self._selectPresetInCombo()
        self._showPresetInfo()

    def _selectPresetInCombo(self) -> None:
        combo = self.ui.presetComboBox
        if combo.count == 0 or not self._parameterNode:
            return
        index = combo.findData(self._parameterNode.preset)
        if index < 0:
            index = 0  # a preset saved with the scene that this user does not have: the first one instead
        if combo.currentIndex != index:
            self._updatingPresets = True  # showing the node's preset must not overwrite its Advanced values
            try:
                combo.currentIndex = index
            finally:
                self._updatingPresets = False
            self._showPresetInfo()

    def _showPresetInfo(self) -> None:
        name = self.ui.presetComboBox.currentData
        registration = self.logic.registration
        self.ui.presetDescriptionLabel.text = registration.presetDescription(name) if name else ""
        self.ui.deletePresetButton.enabled = bool(name) and registration.isUserPreset(name)

    def _onPresetSelected(self, index: int) -> None:
        if self._updatingPresets or index < 0 or not self._parameterNode:
            return
        name = self.ui.presetComboBox.itemData(index)
        self._parameterNode.preset = name
        self.onResetAdvanced()
        self._showPresetInfo()

    def onResetAdvanced(self) -> None:
        """Put the selected preset's values into the Advanced fields."""
        parameters = self._parameterNode
        if not parameters:
            return
        with slicer.util.tryWithErrorDisplay(_("The preset could not be read."), waitCursor=False):
            values = panelValues(self.logic.registration.presetValues(parameters.preset))
            with slicer.util.NodeModify(parameters.parameterNode):
                for name, value in values.items():
                    setattr(parameters, name, value)

    def onSavePreset(self) -> None:
        parameters = self._parameterNode
        name = qt.QInputDialog.getText(
            slicer.util.mainWindow(), _("Save registration preset"), _("Name of the new preset:")
        )
        if not name or not parameters:
            return
        with slicer.util.tryWithErrorDisplay(_("The preset could not be saved."), waitCursor=True):
            path = self.logic.registration.saveUserPreset(
                name.strip(),
                base=parameters.preset,
                overrides=self.logic.overrides(parameters),
                description=_("Saved from the MedFuse Registration panel (based on '{base}').").format(
                    base=parameters.preset
                ),
            )
            parameters.preset = path.stem
            self.refreshPresets()
            self.ui.statusLabel.text = _("Preset saved to {path}").format(path=path)

    def onDeletePreset(self) -> None:
        name = self.ui.presetComboBox.currentData
        if not name or not self.logic.registration.isUserPreset(name):
            return
        if not slicer.util.confirmOkCancelDisplay(_("Delete the preset '{name}'?").format(name=name)):
            return
        self.logic.registration.deleteUserPreset(name)
        if self._parameterNode:
            self._parameterNode.preset = "fast"
        self.refreshPresets()
        self.onResetAdvanced()

    # --- running ----------------------------------------------------------------------------------
    def _applyButtonState(self) -> tuple[bool, str]:
        parameters = self._parameterNode
        ready = bool(parameters and parameters.fixedVolume and parameters.movingVolume)
        return ready, (
            _("Register the moving volume to the fixed one.") if ready else _("Select a fixed and a moving volume.")
        )

    def _sectionsLockedWhileRunning(self) -> tuple:
        return (
            self.ui.inputsCollapsibleButton,
            self.ui.presetCollapsibleButton,
            self.ui.advancedCollapsibleButton,
            self.ui.outputsCollapsibleButton,
        )

    def _outputNodes(self) -> tuple:
        parameters = self._parameterNode
        return (parameters.outputTransform, parameters.outputVolume, parameters.outputSegmentation)

    def _startJob(self):
        return self.logic.startJob(self._parameterNode)

    def _finishJob(self, job, transformNode, volumeNode, segmentationNode) -> None:
        outputs = self.logic.registration.finishJob(job, transformNode, volumeNode, segmentationNode)
        if self._parameterNode:
            self._parameterNode.outputTransform = outputs.transform
            if outputs.volume is not None:
                self._parameterNode.outputVolume = outputs.volume
            if outputs.segmentation is not None:
                self._parameterNode.outputSegmentation = outputs.segmentation
        self.ui.statusLabel.text = RegistrationLogic.resultSummary(job.report)
        self._showResult(job.fixedVolume, job.movingVolume, outputs)

    @staticmethod
    def _showResult(fixedVolume, movingVolume, outputs) -> None:
        """The fixed volume with the registered moving volume faded over it; the segmentation shown on top."""
        foreground = outputs.volume
        if foreground is None:
            return  # the moving volume is not put under the transform: the user's nodes stay as they were
        slicer.util.setSliceViewerLayers(background=fixedVolume, foreground=foreground, foregroundOpacity=0.5, fit=True)
        if outputs.segmentation is not None and outputs.segmentation.GetDisplayNode() is not None:
            outputs.segmentation.GetDisplayNode().SetVisibility(True)


#
# MedFuseRegistrationLogic
#


class MedFuseRegistrationLogic(ScriptedLoadableModuleLogic):
    """The module's logic: owns the parameter node and delegates the work to :class:`RegistrationLogic`.

    Args:
        registration: the Lib logic to delegate to; default one whose user presets live beside
            Slicer's user settings file (:func:`defaultPresetDirectory`).
    """

    def __init__(self, registration: RegistrationLogic | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.registration = registration or RegistrationLogic(presetDirectory=defaultPresetDirectory())

    def getParameterNode(self) -> MedFuseRegistrationParameterNode:
        return MedFuseRegistrationParameterNode(super().getParameterNode())

    @staticmethod
    def overrides(parameters: MedFuseRegistrationParameterNode) -> dict:
        """The Advanced values of the panel, by backend parameter name."""
        return {name: getattr(parameters, name) for name in PANEL_PARAMETERS}

    def startJob(self, parameters: MedFuseRegistrationParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`RegistrationLogic.startJob`."""
        return self.registration.startJob(
            parameters.fixedVolume,
            parameters.movingVolume,
            fixedMask=parameters.fixedMask,
            movingMask=parameters.movingMask,
            movingSegmentation=parameters.movingSegmentation,
            preset=parameters.preset,
            overrides=self.overrides(parameters),
            resampledVolume=parameters.createResampledVolume,
            labelInterpolation=parameters.labelInterpolation,
            device=parameters.device,
        )

    def process(self, fixedVolume, movingVolume, **options):
        """Blocking run for scripts; see :meth:`RegistrationLogic.process`."""
        return self.registration.process(fixedVolume, movingVolume, **options)


#
# MedFuseRegistrationTest
#


class MedFuseRegistrationTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a synthetic shifted pair through the real backend."""

    TESTS = ("test_SameVolumeRejected", "test_ShiftedPairIsRegistered")

    @staticmethod
    def _blobVolume(name: str, shift: float = 0.0):
        """A 48 x 48 x 40 volume (2 mm voxels) with an ellipsoid and an off-centre ball, shifted along i."""
        import numpy as np

        k, j, i = np.mgrid[0:40, 0:48, 0:48].astype(float)
        body = (((i - 23.5 - shift) / 16) ** 2 + ((j - 23.5) / 18) ** 2 + ((k - 19.5) / 14) ** 2) < 1.0
        ball = ((i - 18 - shift) ** 2 + (j - 20) ** 2 + (k - 20) ** 2) < 25
        voxels = (100.0 * body + 150.0 * ball).astype(np.float32)
        volume = slicer.util.addVolumeFromArray(voxels, name=name)
        volume.SetSpacing(2.0, 2.0, 2.0)
        return volume

    def test_SameVolumeRejected(self) -> None:
        volume = self._blobVolume("one")
        with self.assertRaises(ValueError) as raised:
            RegistrationLogic(presetDirectory=slicer.app.temporaryPath).startJob(volume, volume)
        self.assertIn("same node", str(raised.exception))
        self.delayDisplay("Test passed")

    def test_ShiftedPairIsRegistered(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest("the backend's packages are not installed (" + ", ".join(missing) + ")")
        import numpy as np

        self.delayDisplay("Registering a synthetic pair shifted by 3 voxels")
        fixed, moving = self._blobVolume("fixed"), self._blobVolume("moving", shift=3.0)
        before = slicer.util.arrayFromVolume(moving).copy()
        outputs = RegistrationLogic(presetDirectory=slicer.app.temporaryPath).process(
            fixed, moving, device="cpu", overrides={"iterations": "30,20,10"}
        )
        self.assertTrue(outputs.transform.IsA("vtkMRMLGridTransformNode"))
        self.assertEqual(outputs.transform.GetNodeReferenceID("fixedVolume"), fixed.GetID())
        self.assertEqual(outputs.transform.GetNodeReferenceID("movingVolume"), moving.GetID())
        fixedVoxels, warped = slicer.util.arrayFromVolume(fixed), slicer.util.arrayFromVolume(outputs.volume)
        self.assertLess(np.abs(warped - fixedVoxels).mean(), np.abs(before - fixedVoxels).mean())
        self.assertTrue((slicer.util.arrayFromVolume(moving) == before).all(), "the moving volume was modified")
        self.assertIsNone(moving.GetParentTransformNode())
        self.delayDisplay("Test passed")

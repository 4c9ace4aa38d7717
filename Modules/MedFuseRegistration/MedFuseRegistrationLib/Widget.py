"""The MedFuseRegistration panel (needs the Slicer application); imported by the module file after the version check."""

from __future__ import annotations

import qt
import slicer
from MedFuseLib.panel import MedFusePanelWidget
from slicer.i18n import tr as _

from MedFuseRegistrationLib import (
    RegistrationLogic,
    panelValues,
)
from MedFuseRegistrationLib.ModuleLogic import MedFuseRegistrationLogic


class MedFuseRegistrationWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, presets, Apply/Cancel, progress, and the result in the views."""

    START_FAILED_MESSAGE = _("Registration could not start.")
    JOB_FAILED_MESSAGE = _("Registration failed.")

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._updatingPresets = False

    def _createLogic(self) -> MedFuseRegistrationLogic:
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
            for name in self.logic.taskLogic.presetNames():
                user = self.logic.taskLogic.isUserPreset(name)
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
        registration = self.logic.taskLogic
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
            values = panelValues(self.logic.taskLogic.presetValues(parameters.preset))
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
            path = self.logic.taskLogic.saveUserPreset(
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
        if not name or not self.logic.taskLogic.isUserPreset(name):
            return
        if not slicer.util.confirmOkCancelDisplay(_("Delete the preset '{name}'?").format(name=name)):
            return
        self.logic.taskLogic.deleteUserPreset(name)
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
        outputs = self.logic.taskLogic.finishJob(job, transformNode, volumeNode, segmentationNode)
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

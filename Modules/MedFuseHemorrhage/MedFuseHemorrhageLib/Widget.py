"""The MedFuseHemorrhage panel (needs the Slicer application); imported by the module file after the version check."""

from __future__ import annotations

import slicer
from MedFuseLib.model_selector import ModelSelector
from MedFuseLib.panel import MedFusePanelWidget
from MedFuseLib.terminology import loadTerminology
from slicer.i18n import tr as _

from MedFuseHemorrhageLib import (
    EDH_NOTE,
    HemorrhageLogic,
)
from MedFuseHemorrhageLib.ModuleLogic import MedFuseHemorrhageLogic


class MedFuseHemorrhageWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, model choice, Apply/Cancel, progress, table and segment editor."""

    START_FAILED_MESSAGE = _("Hemorrhage segmentation could not start.")
    JOB_FAILED_MESSAGE = _("Hemorrhage segmentation failed.")
    SEGMENT_EDITOR_SINGLETON_TAG = "MedFuseHemorrhageSegmentEditor"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._modelSelector = None
        self._inputCheck = (None, "")

    def _createLogic(self) -> MedFuseHemorrhageLogic:
        return MedFuseHemorrhageLogic()

    def _setupPanel(self) -> None:
        loadTerminology()  # segment codes listed by Slicer's terminology selector
        self.ui.refreshModelsButton.connect("clicked(bool)", self.refreshModels)
        self.ui.showWindowButton.connect("clicked(bool)", self.onShowWindow)
        self._modelSelector = ModelSelector(
            self.ui.modelComboBox,
            self.logic.taskLogic.models,
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
                warnings = self.logic.taskLogic.checkInput(volume)
                spacing = " x ".join(f"{s:.3g}" for s in volume.GetSpacing())
                text = "\n".join([_("CT in HU, voxels {spacing} mm.").format(spacing=spacing), *warnings])
            except ValueError as error:
                text = str(error)
            self._inputCheck = (key, text)
        return self._inputCheck[1]

    def onShowWindow(self) -> None:
        """Show the selected CT in the chosen window: the one place the panel changes the CT's display, on request."""
        parameters = self._parameterNode
        if parameters and parameters.inputVolume:
            HemorrhageLogic.applyDisplayWindow(parameters.inputVolume, parameters.displayWindow)

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
        self.ui.acquisitionLabel.text = ""  # it describes the CT of the previous result
        return self.logic.startJob(self._parameterNode)

    def _finishJob(self, job, segmentationNode, tableNode) -> None:
        ctNode = job.input_nodes["ct"]
        segmentationNode, tableNode = self.logic.finishJob(job, segmentationNode, tableNode)
        if self._parameterNode:
            self._parameterNode.outputSegmentation = segmentationNode
            self._parameterNode.outputTable = tableNode
        warnings = [w for w in job.report.get("warnings", []) if w not in self.ui.modelWarningLabel.text]
        self.ui.statusLabel.text = "\n".join([HemorrhageLogic.resultSummary(tableNode, job.report), *warnings])
        line, outside = HemorrhageLogic.acquisitionLine(job.report)
        self.ui.acquisitionLabel.text = line
        # outside the model's training acquisitions: styled as the model warning (one style, in the .ui)
        self.ui.acquisitionLabel.styleSheet = self.ui.modelWarningLabel.styleSheet if outside else ""
        self._showResult(ctNode, segmentationNode, tableNode)

    def _showResult(self, ctNode, segmentationNode, tableNode) -> None:
        """CT in the slice views with the segments over it, the table in the panel, the editor ready."""
        slicer.util.setSliceViewerLayers(background=ctNode, foreground=None, label=None, fit=True)
        self.ui.volumesTableView.setMRMLTableNode(tableNode)
        self._segmentEditor.edit(segmentationNode, ctNode)
        self.ui.resultsCollapsibleButton.collapsed = False
        self.ui.correctionCollapsibleButton.collapsed = False

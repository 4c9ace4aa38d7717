"""The MedFuseBreast panel (needs the Slicer application); imported by the module file after the version check."""

from __future__ import annotations

import slicer
from MedFuseLib.model_selector import ModelSelector
from MedFuseLib.panel import MedFusePanelWidget
from MedFuseLib.terminology import loadTerminology
from slicer.i18n import tr as _

from MedFuseBreastLib import (
    ROLE_TITLES,
)
from MedFuseBreastLib.ModuleLogic import MedFuseBreastLogic


class MedFuseBreastWidget(MedFusePanelWidget):
    """The panel: roles, phases, alignment, model, Apply/Cancel, segment editor, and the ALN research section."""

    START_FAILED_MESSAGE = _("Breast mass segmentation could not start.")
    JOB_FAILED_MESSAGE = _("Breast mass segmentation failed.")
    SEGMENT_EDITOR_SINGLETON_TAG = "MedFuseBreastSegmentEditor"

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._inputCheck = (None, "")
        self._alnJobPoller = None
        self._modelSelectors = []

    # --- hooks of MedFusePanelWidget ----------------------------------------------------------------
    def _createLogic(self):
        return MedFuseBreastLogic()

    def _setupPanel(self) -> None:
        loadTerminology()  # the Mass segment's codes listed by Slicer's terminology selector
        self.ui.autoAssignButton.connect("clicked(bool)", self.onAutoAssign)
        self.ui.refreshModelsButton.connect("clicked(bool)", self._refreshPanel)
        breast = self.logic.taskLogic
        self._modelSelectors = [
            ModelSelector(
                self.ui.modelComboBox,
                breast.models,
                "model",
                self.ui.modelInfoLabel,
                self.ui.modelWarningLabel,
                breast.modelWarnings,
            ),
            ModelSelector(self.ui.alnModelComboBox, breast.alnModels, "alnModel", self.ui.alnModelInfoLabel),
        ]
        for selector in self._modelSelectors:
            selector.combo.connect(
                "currentIndexChanged(int)",
                lambda index, selector=selector: selector.onSelected(index, self._parameterNode),
            )
        self.ui.alnApplyButton.connect("clicked(bool)", self.onAlnApplyButton)
        self._alnJobPoller = self._newJobPoller(self._onAlnJobProgress, self._onAlnJobDone)
        # The T1C is the source volume, set when a result arrives.
        self._embedSegmentEditor(self.ui.segmentEditorWidget, self.SEGMENT_EDITOR_SINGLETON_TAG)

    def _refreshPanel(self) -> None:
        for selector in self._modelSelectors:
            selector.refresh(self._parameterNode)
        self._onParameterNodeModified()

    def _chooseDefaultInputs(self) -> None:
        parameters = self._parameterNode
        if parameters.t1cVolume:
            return
        for role, node in self.logic.taskLogic.autoAssign(slicer.mrmlScene, requireMaster=False).items():
            setattr(parameters, f"{role}Volume", node)
        if not parameters.alnDceVolume and parameters.t1cVolume:
            parameters.alnDceVolume = parameters.t1cVolume

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        if parameters:
            self.ui.t2wSelector.enabled = parameters.useT2w
            self.ui.preSelector.enabled = parameters.usePre
            phases = self.logic.taskLogic.phaseCount(parameters.t1cVolume)
            prePhases = self.logic.taskLogic.phaseCount(parameters.preVolume) if parameters.usePre else 0
            self.ui.phaseSpinBox.enabled = phases > 1
            self.ui.prePhaseSpinBox.enabled = phases > 1 or prePhases > 1
            self.ui.phaseSpinBox.maximum = max(phases, prePhases, 1) - 1
            self.ui.prePhaseSpinBox.maximum = max(phases, prePhases, 1) - 1
            self.ui.inputCheckLabel.text = self._inputCheckText()
            for selector in self._modelSelectors:
                selector.show(parameters)
            self.ui.alnApplyButton.enabled = bool(parameters.alnDceVolume) and self.ui.alnModelComboBox.count > 0
        self._updateApplyButton()

    def _applyButtonState(self) -> tuple[bool, str]:
        if self.ui.modelComboBox.count == 0:
            return False, _("Install a breast mass model first (see the Model section).")
        if not (self._parameterNode and self._parameterNode.t1cVolume):
            return False, _("Select the T1C (post-contrast T1), the master sequence.")
        return True, _("Segment the breast mass.")

    def _sectionsLockedWhileRunning(self):
        return (
            self.ui.inputsCollapsibleButton,
            self.ui.modelCollapsibleButton,
            self.ui.advancedCollapsibleButton,
            self.ui.outputsCollapsibleButton,
            self.ui.correctionCollapsibleButton,
        )

    def _outputNodes(self) -> tuple:
        return (self._parameterNode.outputSegmentation,)

    def _startJob(self):
        return self.logic.startJob(self._parameterNode)

    def _finishJob(self, job, segmentationNode) -> None:
        t1cNode = job.input_nodes["t1c"]
        result = self.logic.taskLogic.finishJob(job, segmentationNode)
        self._parameterNode.outputSegmentation = result.segmentation
        if not self._parameterNode.alnMass:
            self._parameterNode.alnMass = result.segmentation
        # The model warning beside the selector already says what the backend repeats about phantom training.
        shown = self.ui.modelWarningLabel.text
        warnings = [w for w in result.report.get("warnings", []) if not (shown and "simulated phantom" in w)]
        summary = self.logic.taskLogic.resultSummary({**result.report, "warnings": warnings})
        aligned = [f"{node.GetName()}" for node in result.alignedVolumes.values()]
        self.ui.statusLabel.text = summary + (_("\nAligned: ") + ", ".join(aligned) if aligned else "")
        slicer.util.setSliceViewerLayers(background=t1cNode, foreground=None, label=None, fit=True)
        self._segmentEditor.edit(result.segmentation, t1cNode)
        self.ui.correctionCollapsibleButton.collapsed = False

    # --- inputs and models ----------------------------------------------------------------------------
    def onAutoAssign(self) -> None:
        """Fill the role selectors from the scene's series descriptions and names (roles without a match are kept)."""
        assigned = self.logic.taskLogic.autoAssign(slicer.mrmlScene, requireMaster=False)
        for role, node in assigned.items():
            setattr(self._parameterNode, f"{role}Volume", node)
        found = ", ".join(f"{ROLE_TITLES[role]}: {node.GetName()}" for role, node in assigned.items())
        self.ui.statusLabel.text = found or _("No volume's name suggests a role; select the sequences by hand.")

    def _inputCheckText(self) -> str:
        parameters = self._parameterNode
        nodes = self.logic.volumesOf(parameters)
        # The check reads voxel samples: redo it only when the selection, the phases or the voxels changed.
        key = tuple((n.GetID(), n.GetImageData().GetMTime() if n.GetImageData() else 0) if n else None for n in nodes)
        key += (parameters.phase, parameters.prePhase)
        if self._inputCheck[0] != key:
            try:
                self.logic.taskLogic.resolveInputs(*nodes, **self.logic.phasesOf(parameters))
                used = [ROLE_TITLES[role] for role, node in zip(("t1c", "t2w", "pre"), nodes, strict=True) if node]
                text = _("Sequences: {used}.").format(used=", ".join(used))
            except ValueError as error:
                text = str(error)
            self._inputCheck = (key, text)
        return self._inputCheck[1]

    # --- ALN metastasis (research) --------------------------------------------------------------------
    def onAlnApplyButton(self) -> None:
        """Start the ALN job, or cancel the running one (the button doubles as Cancel)."""
        if self._alnJobPoller.running:
            self._alnJobPoller.cancel()
            self.ui.alnResultLabel.text = _("Cancelling...")
            return
        with slicer.util.tryWithErrorDisplay(_("The ALN estimate could not start."), waitCursor=True):
            if not self._ensureBackendRequirements():
                return
            self._alnJobPoller.start(self.logic.startAlnJob(self._parameterNode))
            self.ui.alnApplyButton.text = _("Cancel")
            self.ui.alnResultLabel.text = _("Starting the backend...")

    def _onAlnJobProgress(self, job) -> None:
        self.ui.alnResultLabel.text = f"{job.stage} ({job.fraction:.0%})"

    def _onAlnJobDone(self, job) -> None:
        self.ui.alnApplyButton.text = _("Estimate ALN probability")
        try:
            self.ui.alnResultLabel.text = self.logic.taskLogic.finishAlnJob(job).summary()
        except (RuntimeError, ValueError) as error:
            self.ui.alnResultLabel.text = _("Failed: {message}").format(message=str(error))

"""The MedFuseSuperResolution panel (needs the Slicer application); imported by the module file after the version check."""

from __future__ import annotations

import slicer
from MedFuseLib.panel import MedFusePanelWidget
from slicer.i18n import tr as _

from MedFuseSuperResolutionLib import (
    SuperResolutionLogic,
    methodNote,
)
from MedFuseSuperResolutionLib.ModuleLogic import MedFuseSuperResolutionLogic


class MedFuseSuperResolutionWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, Apply/Cancel, progress, and a side-by-side view of the result."""

    START_FAILED_MESSAGE = _("Super-resolution could not start.")
    JOB_FAILED_MESSAGE = _("Super-resolution failed.")
    #: Slice view to compare in, by the orientation of the input's slices: one that cuts across them.
    COMPARE_ORIENTATION = {"axial": "Coronal", "coronal": "Sagittal", "sagittal": "Coronal"}

    def _createLogic(self) -> MedFuseSuperResolutionLogic:
        return MedFuseSuperResolutionLogic()

    def _setupPanel(self) -> None:
        self.ui.compareButton.connect("clicked(bool)", self.onCompareButton)

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        self.ui.methodNoteLabel.text = methodNote(parameters.method) if parameters else ""
        self.ui.geometryLabel.text = self._geometryText()
        self.ui.compareButton.enabled = bool(parameters and parameters.inputVolume and parameters.outputVolume)
        network = bool(parameters) and parameters.method == "sr4zct"
        for widget in (self.ui.qualityComboBox, self.ui.epochsSpinBox, self.ui.seedSpinBox, self.ui.deviceComboBox):
            widget.enabled = network
        self._updateApplyButton()

    def _geometryText(self) -> str:
        parameters = self._parameterNode
        if not parameters or not parameters.inputVolume:
            return _("Select a volume.")
        try:
            geometry = self.logic.detectSliceGeometry(parameters.inputVolume, parameters.sliceThickness)
        except ValueError as error:
            return str(error)
        return SuperResolutionLogic.describeSliceGeometry(geometry)

    def _applyButtonState(self) -> tuple[bool, str]:
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        return ready, (_("Compute the super-resolved volume.") if ready else _("Select a thick-slice input volume."))

    def _sectionsLockedWhileRunning(self) -> tuple:
        return (
            self.ui.inputsCollapsibleButton,
            self.ui.parametersCollapsibleButton,
            self.ui.advancedCollapsibleButton,
            self.ui.outputsCollapsibleButton,
        )

    def onCompareButton(self) -> None:
        """Input left, output right (linked), e.g. after changing slices or layouts."""
        if self._parameterNode and self._parameterNode.inputVolume and self._parameterNode.outputVolume:
            self._showSideBySide(self._parameterNode.inputVolume, self._parameterNode.outputVolume)

    # --- running ----------------------------------------------------------------------------------
    def _outputNodes(self) -> tuple:
        return (self._parameterNode.outputVolume,)

    def _startJob(self):
        return self.logic.startJob(self._parameterNode)

    def _finishJob(self, job, outputVolume) -> None:
        outputVolume = self.logic.finishJob(job, outputVolume)
        if self._parameterNode:
            self._parameterNode.outputVolume = outputVolume
        self.ui.statusLabel.text = self._doneText(job.report)
        if self._parameterNode and self._parameterNode.compareAfterRun:  # the layout changes only when asked
            self._showSideBySide(job.input_nodes["volume"], outputVolume)

    @staticmethod
    def _doneText(report: dict) -> str:
        size = report.get("output_size", [])
        spacing = report.get("output_spacing_mm", [])
        axis = report.get("slice_axis", 2)
        seconds = sum(float(value) for value in report.get("timings_s", {}).values())
        if len(size) != 3 or len(spacing) != 3:
            return _("Done.")
        return _("Done: {size} voxels, slices every {spacing:.3g} mm ({method}, {seconds:.1f} s).").format(
            size=" x ".join(str(n) for n in size),
            spacing=spacing[axis],
            method=report.get("method", ""),
            seconds=seconds,
        )

    def _showSideBySide(self, inputVolume, outputVolume) -> None:
        """Input left, result right, linked, in a view that cuts across the input's slices."""
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        try:
            orientation = self.COMPARE_ORIENTATION[self.logic.detectSliceGeometry(inputVolume)["orientation"]]
        except ValueError:
            orientation = "Coronal"
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
        for viewName, volume in (("Red", inputVolume), ("Yellow", outputVolume)):
            sliceWidget = layoutManager.sliceWidget(viewName)
            if sliceWidget is None:
                continue
            compositeNode = sliceWidget.mrmlSliceCompositeNode()
            compositeNode.SetBackgroundVolumeID(volume.GetID())
            compositeNode.SetForegroundVolumeID(None)
            compositeNode.SetLinkedControl(True)
            sliceWidget.mrmlSliceNode().SetOrientation(orientation)
            sliceWidget.sliceLogic().FitSliceToAll()

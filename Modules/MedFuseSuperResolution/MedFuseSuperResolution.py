"""MedFuse Super-Resolution: thinner slices for thick-slice CT and MRI volumes.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseSuperResolutionLib.SuperResolutionLogic`, which runs the backend's ``superres``
task out of process and needs no Qt (see that package for scripting from the Python console).
"""

from typing import Annotated

import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.panel import MedFusePanelWidget
from MedFuseLib.self_test import MedFuseSelfTest
from MedFuseSuperResolutionLib import (
    DEFAULT_METHOD,
    DEFAULT_QUALITY,
    DEVICE_CHOICES,
    SuperResolutionLogic,
    methodChoices,
    methodNote,
    parameterRange,
    taskSpec,
)
from slicer.i18n import tr as _
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleLogic

#
# MedFuseSuperResolution
#


class MedFuseSuperResolution(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedFuse Super-Resolution")
        self.parent.categories = ["MedFuse"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerMedFuse contributors"]
        self.parent.helpText = _(
            "Computes a volume with thinner slices from a thick-slice CT or MRI volume. The in-plane "
            "grid is kept; new slices are placed between the measured ones, spanning the same "
            "anatomy, so the result lines up with the input in every view.<br><br>"
            "<b>Methods:</b> SR4ZCT (default) is a small network trained on the input volume itself: "
            "blurring its sharp in-plane images the way the scanner blurs along the slices teaches it "
            "to undo that blur, which it then applies to the coronal and sagittal reformats. It needs "
            "no training data and no downloaded weights, but trains on every run: the <i>fast</i> "
            "quality takes minutes on a CPU, <i>faithful</i> (the paper's configuration) hours on a "
            "GPU. It relies on the slice thickness: check the detected thickness and overlap, and "
            "enter the true thickness when the volume does not record it. Linear, cubic B-spline and "
            "windowed-sinc interpolation are the baselines: seconds, smoother reformats, no recovered "
            "detail. Results are computed, not measured: compare them with the input (the panel shows "
            "both side by side, linked) before relying on small findings.<br><br>"
            "The input volume is never modified. Computation runs in a separate process and can be "
            "cancelled. See the "
            '<a href="https://github.com/SlicerMedFuse/SlicerMedFuse#readme">SlicerMedFuse documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Method reference: Shi J., Pelt D.M., Batenburg K.J., SR4ZCT: Self-supervised Through-plane "
            "Resolution Enhancement for CT Images with Arbitrary Resolution and Overlap, MLMI 2023. "
            "Built on 3D Slicer, SimpleITK, MONAI and PyTorch; the module layout follows Slicer's "
            "scripted module template and KitwareMedical/SlicerNNUnet."
        )


#
# MedFuseSuperResolutionParameterNode
#


@parameterNodeWrapper
class MedFuseSuperResolutionParameterNode:
    """What the panel shows, saved with the scene. Choices and ranges come from the backend's task declaration.

    inputVolume - thick-slice volume (never modified).
    outputVolume - volume that receives the result; None creates one at Apply.
    method - SR4ZCT (network trained on the volume) or an interpolation baseline.
    targetSpacing - new slice spacing in mm; 0 = the in-plane spacing (isotropic voxels).
    factor - when > 0, new slice spacing = slice spacing / factor (overrides targetSpacing).
    sliceThickness - slice thickness in mm; 0 = detect (DICOM Slice Thickness, else the spacing).
    quality - SR4ZCT configuration: fast (CPU, minutes) or faithful (the paper's, GPU).
    epochs - SR4ZCT training epochs; 0 = the quality's default.
    seed - seed of SR4ZCT's initial weights and training samples.
    device - where network methods run.
    """

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputVolume: slicer.vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(methodChoices())] = DEFAULT_METHOD
    targetSpacing: Annotated[float, WithinRange(*parameterRange("target_spacing"))] = 0.0
    factor: Annotated[float, WithinRange(*parameterRange("factor"))] = 0.0
    sliceThickness: Annotated[float, WithinRange(*parameterRange("slice_thickness"))] = 0.0
    quality: Annotated[str, Choice(list(taskSpec().parameter("quality").choices))] = DEFAULT_QUALITY
    epochs: Annotated[int, WithinRange(*(int(limit) for limit in parameterRange("epochs")))] = 0
    seed: Annotated[int, WithinRange(*(int(limit) for limit in parameterRange("seed")))] = 0
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"


#
# MedFuseSuperResolutionWidget
#


class MedFuseSuperResolutionWidget(MedFusePanelWidget):
    """The panel: parameter node <-> widgets, Apply/Cancel, progress, and a side-by-side view of the result."""

    START_FAILED_MESSAGE = _("Super-resolution could not start.")
    JOB_FAILED_MESSAGE = _("Super-resolution failed.")
    #: Slice view to compare in, by the orientation of the input's slices: one that cuts across them.
    COMPARE_ORIENTATION = {"axial": "Coronal", "coronal": "Sagittal", "sagittal": "Coronal"}

    def _createLogic(self) -> "MedFuseSuperResolutionLogic":
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


#
# MedFuseSuperResolutionLogic
#


class MedFuseSuperResolutionLogic(ScriptedLoadableModuleLogic):
    """The module's logic: owns the parameter node and delegates the work to :class:`SuperResolutionLogic`.

    Args:
        superResolution: the Lib logic to delegate to; default one that reads Slice Thickness from
            Slicer's DICOM database.
    """

    def __init__(self, superResolution: SuperResolutionLogic | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.superResolution = superResolution or SuperResolutionLogic(
            dicomDatabase=getattr(slicer, "dicomDatabase", None)
        )

    def getParameterNode(self) -> MedFuseSuperResolutionParameterNode:
        return MedFuseSuperResolutionParameterNode(super().getParameterNode())

    def startJob(self, parameters: MedFuseSuperResolutionParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`SuperResolutionLogic.startJob`."""
        return self.superResolution.startJob(
            parameters.inputVolume,
            parameters.outputVolume,
            method=parameters.method,
            targetSpacing=parameters.targetSpacing,
            factor=parameters.factor,
            sliceThickness=parameters.sliceThickness,
            quality=parameters.quality,
            epochs=parameters.epochs,
            seed=parameters.seed,
            device=parameters.device,
        )

    def finishJob(self, job, outputVolume=None):
        return self.superResolution.finishJob(job, outputVolume)

    def process(self, inputVolume, outputVolume=None, **options):
        """Blocking run for scripts; see :meth:`SuperResolutionLogic.process`."""
        return self.superResolution.process(inputVolume, outputVolume, **options)

    def detectSliceGeometry(self, volumeNode, sliceThickness: float = 0.0) -> dict:
        return self.superResolution.detectSliceGeometry(volumeNode, sliceThickness)


#
# MedFuseSuperResolutionTest
#


class MedFuseSuperResolutionTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a synthetic thick-slice volume through the real backend."""

    TESTS = ("test_ThickSlicesBecomeThin", "test_IsotropicVolumeIsRejected")

    def _skipWithoutBackend(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest(
                "the backend's packages are not installed ("
                + ", ".join(missing)
                + "); press Apply once in the module to install them"
            )

    @staticmethod
    def _syntheticVolume(name: str, spacing: tuple):
        """A 40 x 40 x 9 CT-like box (air around a water ball with a bone shell), HU as int16."""
        import numpy as np

        k, j, i = np.mgrid[0:9, 0:40, 0:40].astype(float)
        radius = np.sqrt(((i - 19.5) * spacing[0]) ** 2 + ((j - 19.5) * spacing[1]) ** 2 + ((k - 4) * spacing[2]) ** 2)
        voxels = np.full(radius.shape, -1000, dtype=np.int16)
        voxels[radius < 17] = 1000
        voxels[radius < 15] = 40
        volume = slicer.util.addVolumeFromArray(voxels, name=name)
        volume.SetSpacing(*spacing)
        return volume

    def test_ThickSlicesBecomeThin(self) -> None:
        self._skipWithoutBackend()
        self.delayDisplay("Super-resolving a synthetic 4 mm slice volume by a factor of 4")
        thick = self._syntheticVolume("thick", (1.0, 1.0, 4.0))
        before = slicer.util.arrayFromVolume(thick).copy()

        fine = MedFuseSuperResolutionLogic().process(thick, method="linear", factor=4.0)

        self.assertEqual(fine.GetImageData().GetDimensions(), (40, 40, 33))  # (9 - 1) * 4 + 1 slices
        for got, expected in zip(fine.GetSpacing(), (1.0, 1.0, 1.0), strict=True):
            self.assertAlmostEqual(got, expected, places=4)
        for got, expected in zip(fine.GetOrigin(), thick.GetOrigin(), strict=True):
            self.assertAlmostEqual(got, expected, places=4)
        voxels = slicer.util.arrayFromVolume(fine)
        self.assertGreaterEqual(int(voxels.min()), -1000)
        self.assertLessEqual(int(voxels.max()), 1000)
        self.assertTrue((slicer.util.arrayFromVolume(thick) == before).all(), "the input volume was modified")
        self.delayDisplay("Test passed")

    def test_IsotropicVolumeIsRejected(self) -> None:
        iso = self._syntheticVolume("isotropic", (1.0, 1.0, 1.0))
        self.assertTrue(MedFuseSuperResolutionLogic().detectSliceGeometry(iso)["isotropic"])
        with self.assertRaises(ValueError) as raised:
            MedFuseSuperResolutionLogic().superResolution.taskParameters(iso)
        self.assertIn("nothing to super-resolve", str(raised.exception))
        self.delayDisplay("Test passed")

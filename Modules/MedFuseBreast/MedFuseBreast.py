"""MedFuse Breast: breast mass segmentation on multi-sequence breast MRI (T1C master, T2W assistant, pre-contrast).

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseBreastLib.BreastLogic`, which runs the backend's ``breast-mass`` task (and the
research task ``aln-metastasis``) out of process and needs no Qt (see that package for scripting
from the Python console). The panel's lifecycle, Apply/Cancel and job polling come from
:class:`MedFuseLib.panel.MedFusePanelWidget`.
"""

from typing import Annotated

import slicer
from MedFuseBreastLib import (
    CLINICAL_FIELDS,
    DEVICE_CHOICES,
    PANEL_DEFAULTS,
    ROLE_TITLES,
    BreastLogic,
    panelFieldName,
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
# MedFuseBreast
#


class MedFuseBreast(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedFuse Breast")
        self.parent.categories = ["MedFuse"]
        self.parent.dependencies = []
        self.parent.contributors = ["SlicerMedFuse contributors"]
        self.parent.helpText = _(
            "Segments breast masses on multi-sequence breast MRI. The contrast-enhanced T1 (T1C) is the master "
            "sequence and is required; the T2W is the assistant sequence that tells enhancing normal tissue from "
            "masses; a pre-contrast T1 gives the subtraction image. Missing sequences are allowed. Volumes are "
            "assigned to the roles from their series descriptions; a DCE series (volume sequence or multi-volume) "
            "gives the chosen phase. Sequences that are not in register with the T1C are refused; 'Align sequences "
            "first' aligns them rigidly with the MedFuse registration task. The result is a segmentation with one "
            "coded 'Mass' segment under the study (optionally the network's attention maps as volumes); correct "
            "it with the embedded segment editor.<br><br>"
            "The collapsed <b>ALN metastasis (research)</b> section estimates the probability of axillary lymph node "
            "metastasis from the DCE (and T2W) and ten clinical values; research use only.<br><br>"
            "<b>Models:</b> the panel shows each model's licence and intended use. The demo models are trained on "
            "simulated (phantom) data and are <b>not for clinical use</b>. The inputs are never modified; "
            "computation runs in a separate process and can be cancelled. See the "
            '<a href="https://github.com/SlicerMedFuse/SlicerMedFuse/blob/main/docs/breast.md">breast documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Network: Li et al., Learning Cross-Modal Deep Representations for Multi-Modal MR Image Segmentation, "
            "MICCAI 2019 (master/assistant spatial attention). Subtraction input: Zhang et al., MLMI 2023. Missing "
            "sequences: Konwer et al., MagNET, MLMI 2023. ALN classifier: Gravina et al., Transfer Module. Built on "
            "3D Slicer, SimpleITK, MONAI and PyTorch."
        )


#
# MedFuseBreastParameterNode
#


def _clinicalRange(name: str) -> tuple[float, float]:
    field = next(field for field in CLINICAL_FIELDS if field.name == name)
    return field.minimum, field.maximum


@parameterNodeWrapper
class MedFuseBreastParameterNode:
    """What the panel shows, saved with the scene. Defaults and ranges come from the backend's task declarations.

    t1cVolume, t2wVolume, preVolume - the sequences by role (T1C required); never modified.
    useT2w, usePre - whether the T2W / pre-contrast selection is used (presence checkboxes).
    phase, prePhase - phases of a multi-phase (DCE) series; -1 = not chosen / none.
    alignFirst - align T2W and pre-contrast rigidly to the T1C (registration task) before segmenting.
    model - model as ``id@version``; empty = the default (demo) model.
    device - where the network runs.
    threshold - mass probability at or above which a voxel is labelled.
    maxMisalignmentMm - largest tolerated shift of a sequence against the T1C (0: no check).
    attentionMaps - also add the five master attention maps as volumes.
    outputSegmentation - segmentation that receives the Mass segment; None creates one at Apply.
    alnDceVolume, alnT2wVolume, alnMass, aln<Field>, alnModel - the ALN metastasis (research) section.
    """

    t1cVolume: slicer.vtkMRMLScalarVolumeNode
    t2wVolume: slicer.vtkMRMLScalarVolumeNode
    preVolume: slicer.vtkMRMLScalarVolumeNode
    useT2w: bool = True
    usePre: bool = True
    phase: Annotated[int, WithinRange(-1, 999)] = -1
    prePhase: Annotated[int, WithinRange(-1, 999)] = -1
    alignFirst: bool = False
    model: str = ""
    device: Annotated[str, Choice(list(DEVICE_CHOICES))] = "auto"
    threshold: Annotated[float, WithinRange(*parameterRange("threshold"))] = float(
        taskSpec().parameter("threshold").default
    )
    maxMisalignmentMm: Annotated[float, WithinRange(*parameterRange("max_misalignment_mm"))] = float(
        taskSpec().parameter("max_misalignment_mm").default
    )
    attentionMaps: bool = False
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    alnDceVolume: slicer.vtkMRMLScalarVolumeNode
    alnT2wVolume: slicer.vtkMRMLScalarVolumeNode
    alnMass: slicer.vtkMRMLSegmentationNode
    alnAge: Annotated[float, WithinRange(*_clinicalRange("age"))] = PANEL_DEFAULTS["age"]
    alnFamilyHistory: bool = bool(PANEL_DEFAULTS["family_history"])
    alnHormoneTherapy: bool = bool(PANEL_DEFAULTS["hormone_therapy"])
    alnMenopause: bool = bool(PANEL_DEFAULTS["menopause"])
    alnTumourSizeMm: Annotated[float, WithinRange(*_clinicalRange("tumour_size_mm"))] = PANEL_DEFAULTS["tumour_size_mm"]
    alnErPercent: Annotated[float, WithinRange(*_clinicalRange("er_percent"))] = PANEL_DEFAULTS["er_percent"]
    alnPgrPercent: Annotated[float, WithinRange(*_clinicalRange("pgr_percent"))] = PANEL_DEFAULTS["pgr_percent"]
    alnKi67Percent: Annotated[float, WithinRange(*_clinicalRange("ki67_percent"))] = PANEL_DEFAULTS["ki67_percent"]
    alnHer2: bool = bool(PANEL_DEFAULTS["her2"])
    alnGrade: Annotated[int, WithinRange(1, 3)] = int(PANEL_DEFAULTS["grade"])
    alnModel: str = ""


#
# MedFuseBreastWidget
#


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
        breast = self.logic.breast
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
        for role, node in self.logic.breast.autoAssign(slicer.mrmlScene, requireMaster=False).items():
            setattr(parameters, f"{role}Volume", node)
        if not parameters.alnDceVolume and parameters.t1cVolume:
            parameters.alnDceVolume = parameters.t1cVolume

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        parameters = self._parameterNode
        if parameters:
            self.ui.t2wSelector.enabled = parameters.useT2w
            self.ui.preSelector.enabled = parameters.usePre
            phases = self.logic.breast.phaseCount(parameters.t1cVolume)
            prePhases = self.logic.breast.phaseCount(parameters.preVolume) if parameters.usePre else 0
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
        result = self.logic.breast.finishJob(job, segmentationNode)
        self._parameterNode.outputSegmentation = result.segmentation
        if not self._parameterNode.alnMass:
            self._parameterNode.alnMass = result.segmentation
        # The model warning beside the selector already says what the backend repeats about phantom training.
        shown = self.ui.modelWarningLabel.text
        warnings = [w for w in result.report.get("warnings", []) if not (shown and "simulated phantom" in w)]
        summary = self.logic.breast.resultSummary({**result.report, "warnings": warnings})
        aligned = [f"{node.GetName()}" for node in result.alignedVolumes.values()]
        self.ui.statusLabel.text = summary + (_("\nAligned: ") + ", ".join(aligned) if aligned else "")
        slicer.util.setSliceViewerLayers(background=t1cNode, foreground=None, label=None, fit=True)
        self._segmentEditor.edit(result.segmentation, t1cNode)
        self.ui.correctionCollapsibleButton.collapsed = False

    # --- inputs and models ----------------------------------------------------------------------------
    def onAutoAssign(self) -> None:
        """Fill the role selectors from the scene's series descriptions and names (roles without a match are kept)."""
        assigned = self.logic.breast.autoAssign(slicer.mrmlScene, requireMaster=False)
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
                self.logic.breast.resolveInputs(*nodes, **self.logic.phasesOf(parameters))
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
            self.ui.alnResultLabel.text = self.logic.breast.finishAlnJob(job).summary()
        except (RuntimeError, ValueError) as error:
            self.ui.alnResultLabel.text = _("Failed: {message}").format(message=str(error))


#
# MedFuseBreastLogic
#


class MedFuseBreastLogic(ScriptedLoadableModuleLogic):
    """The module's logic: owns the parameter node and delegates the work to :class:`BreastLogic`.

    Args:
        breast: the Lib logic to delegate to; default one on the user's model store.
    """

    def __init__(self, breast: BreastLogic | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.breast = breast or BreastLogic()

    def getParameterNode(self) -> MedFuseBreastParameterNode:
        return MedFuseBreastParameterNode(super().getParameterNode())

    @staticmethod
    def volumesOf(parameters: MedFuseBreastParameterNode) -> tuple:
        """(T1C, T2W or None, pre-contrast or None): the selections whose presence box is checked."""
        return (
            parameters.t1cVolume,
            parameters.t2wVolume if parameters.useT2w else None,
            parameters.preVolume if parameters.usePre else None,
        )

    @staticmethod
    def phasesOf(parameters: MedFuseBreastParameterNode) -> dict:
        """``phase`` and ``prePhase`` for :class:`BreastLogic` (None where the panel shows 'not chosen')."""
        return {
            "phase": parameters.phase if parameters.phase >= 0 else None,
            "prePhase": parameters.prePhase if parameters.prePhase >= 0 else None,
        }

    def startJob(self, parameters: MedFuseBreastParameterNode):
        """Start the backend with the parameter node's settings; see :meth:`BreastLogic.startJob`."""
        return self.breast.startJob(
            *self.volumesOf(parameters),
            **self.phasesOf(parameters),
            alignFirst=parameters.alignFirst,
            attentionMaps=parameters.attentionMaps,
            threshold=parameters.threshold,
            maxMisalignmentMm=parameters.maxMisalignmentMm,
            model=parameters.model or None,
            device=parameters.device,
        )

    def startAlnJob(self, parameters: MedFuseBreastParameterNode):
        """Start the ALN task with the research section's sequences and clinical values; see :meth:`BreastLogic.startAlnJob`."""
        clinical = {field.name: float(getattr(parameters, panelFieldName(field.name))) for field in CLINICAL_FIELDS}
        return self.breast.startAlnJob(
            parameters.alnDceVolume,
            parameters.alnT2wVolume,
            parameters.alnMass,
            clinical=clinical,
            model=parameters.alnModel or None,
            device=parameters.device,
        )

    def process(self, t1cNode, t2wNode=None, preNode=None, **options):
        """Blocking run for scripts; see :meth:`BreastLogic.process`. Returns a :class:`MedFuseBreastLib.BreastResult`."""
        return self.breast.process(t1cNode, t2wNode, preNode, **options)


#
# MedFuseBreastTest
#


class MedFuseBreastTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a phantom breast study through the real backend."""

    TESTS = ("test_RolesFromNames", "test_CtAsT1cRefused", "test_PhantomStudyIsSegmented")

    @staticmethod
    def _phantomStudy():
        """T1C, T2W and pre-contrast volumes of a seeded 64 x 64 x 12 phantom study (5 x 5 x 4 mm voxels)."""
        from MedFuseLib.mrml_bridge import image_to_volume_node

        from SlicerMedFuse.breast.phantom import PhantomConfig, generate_phantom, study_geometry

        grid = study_geometry(64, 12, (5.0, 5.0, 4.0))
        phantom = generate_phantom(21, grid, PhantomConfig(masses=(1, 1), mass_diameter_mm=(20.0, 25.0)))
        names = {"t1c": "Ax T1 FS +C", "t2w": "Ax STIR", "pre": "Ax T1 FS pre"}
        return {role: image_to_volume_node(phantom.images[role], slicer.mrmlScene, names[role]) for role in names}

    def test_RolesFromNames(self) -> None:
        study = self._phantomStudy()
        self.assertEqual(BreastLogic().autoAssign(slicer.mrmlScene), study)
        self.delayDisplay("Test passed")

    def test_CtAsT1cRefused(self) -> None:
        ct = slicer.util.addVolumeFromArray(
            (slicer.util.arrayFromVolume(self._phantomStudy()["t1c"]) * 4.0 - 1000.0).astype("float32"), name="CT"
        )
        with self.assertRaises(ValueError) as raised:
            BreastLogic().resolveInputs(ct)
        self.assertIn("looks like a CT", str(raised.exception))
        self.delayDisplay("Test passed")

    def test_PhantomStudyIsSegmented(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest("the backend's packages are not installed (" + ", ".join(missing) + ")")
        logic = BreastLogic()
        if logic.models.default() is None:
            self.skipTest(logic.models.noModelMessage())
        self.delayDisplay("Segmenting a phantom breast study with the default model")
        study = self._phantomStudy()
        before = slicer.util.arrayFromVolume(study["t1c"]).copy()

        result = MedFuseBreastLogic().process(study["t1c"], study["t2w"], study["pre"], device="cpu")

        segment = result.segmentation.GetSegmentation().GetNthSegment(0)
        self.assertEqual(segment.GetName(), taskSpec().labels[0].name)
        self.assertTrue((slicer.util.arrayFromVolume(study["t1c"]) == before).all(), "the T1C was modified")
        self.delayDisplay("Test passed")

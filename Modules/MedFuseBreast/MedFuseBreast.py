"""MedFuse Breast: breast mass segmentation on multi-sequence breast MRI (T1C master, T2W assistant, pre-contrast).

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseBreastLib.BreastLogic`, which runs the backend's ``breast-mass`` task (and the
research task ``aln-metastasis``) out of process and needs no Qt (see that package for scripting
from the Python console). The panel's lifecycle, Apply/Cancel and job polling come from
:class:`MedFuseLib.panel.MedFusePanelWidget`.
"""

# This file parses and runs on Python 3.9 (Slicer 5.6/5.8) up to the version check, so an old Slicer
# shows one sentence instead of a traceback; the panel, parameter pack and logic live in MedFuseBreastLib.
from MedFuseLib.slicer_version import TooOldSlicerWidget, slicerTooOldMessage
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


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


if slicerTooOldMessage() is None:
    # Slicer finds the widget, logic and test classes by name in this module's namespace.
    from MedFuseBreastLib.ModuleLogic import MedFuseBreastLogic  # noqa: F401
    from MedFuseBreastLib.SelfTest import MedFuseBreastTest  # noqa: F401
    from MedFuseBreastLib.Widget import MedFuseBreastWidget  # noqa: F401
else:

    class MedFuseBreastWidget(TooOldSlicerWidget):
        """Shown on a Slicer older than 5.10: one sentence naming the Slicer to install."""

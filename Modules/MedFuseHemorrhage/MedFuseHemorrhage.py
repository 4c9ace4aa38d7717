"""MedFuse Hemorrhage: epidural, intraparenchymal, intraventricular, subarachnoid and subdural bleeds on head CT.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseHemorrhageLib.HemorrhageLogic`, which runs the backend's ``hemorrhage`` task out of
process and needs no Qt (see that package for scripting from the Python console).
"""

# This file parses and runs on Python 3.9 (Slicer 5.6/5.8) up to the version check, so an old Slicer
# shows one sentence instead of a traceback; the panel, parameter pack and logic live in MedFuseHemorrhageLib.
from MedFuseLib.slicer_version import TooOldSlicerWidget, slicerTooOldMessage
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


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
            "(mL), number of components and slice range. Correct the "
            "result with the embedded segment editor.<br><br>"
            "<b>Models:</b> the network comes from a model bundle installed in the MedFuse model store "
            "(<tt>medfuse models install ID</tt>, or a bundle folder dropped into the store). The panel "
            "shows each model's licence and intended use. The demo model is trained on simulated bleeds "
            "painted into one real head CT and is <b>not for clinical use</b>.<br><br>"
            "The CT is never modified, its display included (the Display window's Show button applies a brain or "
            "blood window when you ask). Computation runs in a separate process "
            "and can be cancelled. See the "
            '<a href="https://github.com/SlicerMedFuse/SlicerMedFuse#readme">SlicerMedFuse documentation</a>.'
        )
        self.parent.acknowledgementText = _(
            "Task and labels: Wu et al., BHSD: A 3D Multi-class Brain Hemorrhage Segmentation Dataset, "
            "MLMI 2023. Network: nnU-Net-style 3D U-Net (Isensee et al., Nat. Methods 2021) built with "
            "MONAI. Built on 3D Slicer, SimpleITK, MONAI and PyTorch; the module layout follows Slicer's "
            "scripted module template and KitwareMedical/SlicerNNUnet."
        )


if slicerTooOldMessage() is None:
    # Slicer finds the widget, logic and test classes by name in this module's namespace.
    from MedFuseHemorrhageLib.ModuleLogic import MedFuseHemorrhageLogic  # noqa: F401
    from MedFuseHemorrhageLib.SelfTest import MedFuseHemorrhageTest  # noqa: F401
    from MedFuseHemorrhageLib.Widget import MedFuseHemorrhageWidget  # noqa: F401
else:

    class MedFuseHemorrhageWidget(TooOldSlicerWidget):
        """Shown on a Slicer older than 5.10: one sentence naming the Slicer to install."""

"""MedFuse Super-Resolution: thinner slices for thick-slice CT and MRI volumes.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseSuperResolutionLib.SuperResolutionLogic`, which runs the backend's ``superres``
task out of process and needs no Qt (see that package for scripting from the Python console).
"""

# This file parses and runs on Python 3.9 (Slicer 5.6/5.8) up to the version check, so an old Slicer
# shows one sentence instead of a traceback; the panel, parameter pack and logic live in MedFuseSuperResolutionLib.
from MedFuseLib.slicer_version import TooOldSlicerWidget, slicerTooOldMessage
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


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
            "detail. Results are computed, not measured: compare them with the input (Compare side by side "
            "shows both, linked) before relying on small findings.<br><br>"
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


if slicerTooOldMessage() is None:
    # Slicer finds the widget, logic and test classes by name in this module's namespace.
    from MedFuseSuperResolutionLib.ModuleLogic import MedFuseSuperResolutionLogic  # noqa: F401
    from MedFuseSuperResolutionLib.SelfTest import MedFuseSuperResolutionTest  # noqa: F401
    from MedFuseSuperResolutionLib.Widget import MedFuseSuperResolutionWidget  # noqa: F401
else:

    class MedFuseSuperResolutionWidget(TooOldSlicerWidget):
        """Shown on a Slicer older than 5.10: one sentence naming the Slicer to install."""

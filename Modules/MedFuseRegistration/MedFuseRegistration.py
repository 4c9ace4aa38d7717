"""MedFuse Registration: training-free deformable registration of two volumes, same or different contrast.

The panel reads and writes a typed parameter node; the work is done by
:class:`MedFuseRegistrationLib.RegistrationLogic`, which runs the backend's ``registration`` task out
of process and needs no Qt (see that package for scripting from the Python console).
"""

# This file parses and runs on Python 3.9 (Slicer 5.6/5.8) up to the version check, so an old Slicer
# shows one sentence instead of a traceback; the panel, parameter pack and logic live in MedFuseRegistrationLib.
from MedFuseLib.slicer_version import TooOldSlicerWidget, slicerTooOldMessage
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModule


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


if slicerTooOldMessage() is None:
    # Slicer finds the widget, logic and test classes by name in this module's namespace.
    from MedFuseRegistrationLib.ModuleLogic import MedFuseRegistrationLogic  # noqa: F401
    from MedFuseRegistrationLib.SelfTest import MedFuseRegistrationTest  # noqa: F401
    from MedFuseRegistrationLib.Widget import MedFuseRegistrationWidget  # noqa: F401
else:

    class MedFuseRegistrationWidget(TooOldSlicerWidget):
        """Shown on a Slicer older than 5.10: one sentence naming the Slicer to install."""

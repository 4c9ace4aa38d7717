"""The MedFuseBreast self-test run inside Slicer (Reload & Test, or ctest)."""

from __future__ import annotations

import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.self_test import MedFuseSelfTest

from MedFuseBreastLib import (
    BreastLogic,
    taskSpec,
)
from MedFuseBreastLib.ModuleLogic import MedFuseBreastLogic


class MedFuseBreastTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a phantom breast study through the real backend."""

    TESTS = ("test_RolesFromNames", "test_CtAsT1cRefused", "test_PhantomStudyIsSegmented")

    @staticmethod
    def _phantomStudy():
        """T1C, T2W and pre-contrast volumes of a seeded 64 x 64 x 12 phantom study (5 x 5 x 4 mm voxels)."""
        from MedFuseLib.mrml_bridge import image_to_volume_node

        from SlicerMedFuse.facade import PhantomConfig, generate_phantom, study_geometry

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

"""The MedFuseHemorrhage self-test run inside Slicer (Reload & Test, or ctest)."""

from __future__ import annotations

import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.self_test import MedFuseSelfTest

from MedFuseHemorrhageLib import (
    HemorrhageLogic,
    taskSpec,
)
from MedFuseHemorrhageLib.ModuleLogic import MedFuseHemorrhageLogic


class MedFuseHemorrhageTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a synthetic head CT through the real backend."""

    TESTS = ("test_MRIsRejected", "test_SyntheticHeadIsSegmented")

    @staticmethod
    def _syntheticHead(name: str, air: int = -1000, brain: int = 35, bone: int = 1200):
        """A 96 x 96 x 40 head-like volume (2 mm voxels): air, an ellipsoidal skull, brain, and one 65 HU blob."""
        import numpy as np

        k, j, i = np.mgrid[0:40, 0:96, 0:96].astype(float)
        radius = np.sqrt(((i - 47.5) / 38) ** 2 + ((j - 47.5) / 44) ** 2 + ((k - 19.5) / 30) ** 2)
        voxels = np.full(radius.shape, air, dtype=np.int16)
        voxels[radius < 1.0] = bone
        voxels[radius < 0.9] = brain
        blob = np.sqrt((i - 35) ** 2 + (j - 45) ** 2 + (k - 20) ** 2) < 5
        voxels[blob] = brain + 30
        volume = slicer.util.addVolumeFromArray(voxels, name=name)
        volume.SetSpacing(2.0, 2.0, 2.0)
        return volume

    def test_MRIsRejected(self) -> None:
        mr = self._syntheticHead("MR-like", air=0, brain=400, bone=80)
        with self.assertRaises(ValueError) as raised:
            HemorrhageLogic().checkInput(mr)
        self.assertIn("Hounsfield", str(raised.exception))
        self.delayDisplay("Test passed")

    def test_SyntheticHeadIsSegmented(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest("the backend's packages are not installed (" + ", ".join(missing) + ")")
        logic = HemorrhageLogic()
        if logic.defaultModel() is None:
            self.skipTest(logic.noModelMessage())
        self.delayDisplay("Segmenting a synthetic head CT with the default model")
        ct = self._syntheticHead("synthetic head")
        before = slicer.util.arrayFromVolume(ct).copy()
        windowBefore = ct.GetDisplayNode().GetWindow()

        segmentation, table = MedFuseHemorrhageLogic().process(ct, device="cpu")

        names = [segment.GetName() for segment in (segmentation.GetSegmentation().GetNthSegment(n) for n in range(5))]
        self.assertEqual(names, [label.name for label in taskSpec().labels])
        self.assertEqual(table.GetNumberOfRows(), 5)
        self.assertTrue((slicer.util.arrayFromVolume(ct) == before).all(), "the CT was modified")
        self.assertEqual(ct.GetDisplayNode().GetWindow(), windowBefore, "the CT's display was changed")
        self.delayDisplay("Test passed")

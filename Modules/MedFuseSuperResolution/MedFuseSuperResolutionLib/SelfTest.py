"""The MedFuseSuperResolution self-test run inside Slicer (Reload & Test, or ctest)."""

from __future__ import annotations

import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.self_test import MedFuseSelfTest

from MedFuseSuperResolutionLib.ModuleLogic import MedFuseSuperResolutionLogic


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
            MedFuseSuperResolutionLogic().taskLogic.checkedParameters(iso)
        self.assertIn("nothing to super-resolve", str(raised.exception))
        self.delayDisplay("Test passed")

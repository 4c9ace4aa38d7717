"""The MedFuseRegistration self-test run inside Slicer (Reload & Test, or ctest)."""

from __future__ import annotations

import slicer
from MedFuseLib.installer import BackendInstaller
from MedFuseLib.self_test import MedFuseSelfTest

from MedFuseRegistrationLib import (
    RegistrationLogic,
)


class MedFuseRegistrationTest(MedFuseSelfTest):
    """Self-test run inside Slicer (Reload & Test, or ctest): a synthetic shifted pair through the real backend."""

    TESTS = ("test_SameVolumeRejected", "test_ShiftedPairIsRegistered")

    @staticmethod
    def _blobVolume(name: str, shift: float = 0.0):
        """A 48 x 48 x 40 volume (2 mm voxels) with an ellipsoid and an off-centre ball, shifted along i."""
        import numpy as np

        k, j, i = np.mgrid[0:40, 0:48, 0:48].astype(float)
        body = (((i - 23.5 - shift) / 16) ** 2 + ((j - 23.5) / 18) ** 2 + ((k - 19.5) / 14) ** 2) < 1.0
        ball = ((i - 18 - shift) ** 2 + (j - 20) ** 2 + (k - 20) ** 2) < 25
        voxels = (100.0 * body + 150.0 * ball).astype(np.float32)
        volume = slicer.util.addVolumeFromArray(voxels, name=name)
        volume.SetSpacing(2.0, 2.0, 2.0)
        return volume

    def test_SameVolumeRejected(self) -> None:
        volume = self._blobVolume("one")
        with self.assertRaises(ValueError) as raised:
            RegistrationLogic(presetDirectory=slicer.app.temporaryPath).startJob(volume, volume)
        self.assertIn("same node", str(raised.exception))
        self.delayDisplay("Test passed")

    def test_ShiftedPairIsRegistered(self) -> None:
        missing = BackendInstaller.for_slicer().missing_requirements()
        if missing:
            self.skipTest("the backend's packages are not installed (" + ", ".join(missing) + ")")
        import numpy as np

        self.delayDisplay("Registering a synthetic pair shifted by 3 voxels")
        fixed, moving = self._blobVolume("fixed"), self._blobVolume("moving", shift=3.0)
        before = slicer.util.arrayFromVolume(moving).copy()
        outputs = RegistrationLogic(presetDirectory=slicer.app.temporaryPath).process(
            fixed, moving, device="cpu", overrides={"iterations": "30,20,10"}
        )
        self.assertTrue(outputs.transform.IsA("vtkMRMLGridTransformNode"))
        self.assertEqual(outputs.transform.GetNodeReferenceID("fixedVolume"), fixed.GetID())
        self.assertEqual(outputs.transform.GetNodeReferenceID("movingVolume"), moving.GetID())
        fixedVoxels, warped = slicer.util.arrayFromVolume(fixed), slicer.util.arrayFromVolume(outputs.volume)
        self.assertLess(np.abs(warped - fixedVoxels).mean(), np.abs(before - fixedVoxels).mean())
        self.assertTrue((slicer.util.arrayFromVolume(moving) == before).all(), "the moving volume was modified")
        self.assertIsNone(moving.GetParentTransformNode())
        self.delayDisplay("Test passed")

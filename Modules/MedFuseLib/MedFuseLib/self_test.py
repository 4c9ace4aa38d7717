"""The base of the MedFuse modules' self-tests, run inside Slicer (Reload & Test, or ctest).

A module's ``<ModuleName>Test`` subclasses :class:`MedFuseSelfTest` and names its tests in order::

    class MedFuseExampleTest(MedFuseSelfTest):
        TESTS = ("test_BadInputRejected", "test_SyntheticVolumeIsProcessed")

Each test runs on a cleared scene; a test that calls ``self.skipTest(reason)`` (no backend packages,
no model installed) is shown as skipped instead of failing the run. Like :mod:`MedFuseLib.panel`,
this file needs the Slicer application.
"""

from __future__ import annotations

import unittest

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

__all__ = ["MedFuseSelfTest"]


class MedFuseSelfTest(ScriptedLoadableModuleTest):
    """Runs the methods named in :attr:`TESTS`, each on a cleared scene; skipped ones are shown, not failed."""

    TESTS: tuple[str, ...] = ()

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        for name in self.TESTS:
            self.setUp()
            try:
                getattr(self, name)()
            except unittest.SkipTest as reason:
                self.delayDisplay(f"Skipped {name}: {reason}")

"""Fixtures for the Slicer-side tests: MedFuseLib on sys.path and a clean headless MRML scene.

The MRML tests need slicer-core (``pip install slicer-core``, or the ``dev``/``slicer`` extras).
Without it they are skipped with a message; in CI (``CI`` set) they fail instead, so a broken
environment cannot pass by skipping.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDFUSE_LIB_DIR = REPO_ROOT / "Modules" / "MedFuseLib"

if str(MEDFUSE_LIB_DIR) not in sys.path:
    sys.path.insert(0, str(MEDFUSE_LIB_DIR))


def import_slicer_core() -> ModuleType:
    """``import slicer`` from slicer-core, or skip (fail in CI) the calling test module."""
    try:
        return importlib.import_module("slicer")
    except ImportError as error:
        message = f"slicer-core is not importable ({error}); install it with: pip install -e '.[slicer]'"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="session")
def headless_app():
    """The headless Slicer (scene + module logics), built once per test session."""
    import_slicer_core()
    from Testing.mrml.headless_slicer import headless_slicer

    return headless_slicer()


@pytest.fixture
def slicer_scene(headless_app):
    """A clean ``vtkMRMLScene`` (also ``slicer.mrmlScene``) for one test; cleared again afterwards."""
    from Testing.mrml.headless_slicer import reset_scene

    scene = reset_scene(headless_app)
    yield scene
    reset_scene(headless_app)


@pytest.fixture
def slicer_app(slicer_scene):
    """Slicer's Python application layer stood in on the clean scene (``qt``, ``ctk``, ``slicer.app``, ...).

    See :mod:`Testing.slicer_app_stand_ins`: a module file, its Logic and its parameter node run as in
    Slicer; widgets do not. Yields the ``slicer.app`` stand-in; everything is undone afterwards.
    """
    from Testing.slicer_app_stand_ins import slicer_app_stand_ins

    with slicer_app_stand_ins() as app:
        yield app

"""MedFuseLib.terminology: the committed .term.json loads into Slicer's Terminologies logic; headless it is a no-op."""

from __future__ import annotations

import types

import pytest
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

from MedFuseLib import terminology  # noqa: E402  (needs slicer-core, checked above)

from SlicerMedFuse.contract import TERMINOLOGY_CONTEXT  # noqa: E402
from SlicerMedFuse.terminology import task_labels  # noqa: E402

pytestmark = pytest.mark.slicer


def test_the_file_is_found_in_the_source_tree() -> None:
    path = terminology.terminologyFilePath()
    assert path is not None and path.name == terminology.TERMINOLOGY_FILE_NAME
    assert path.parent.as_posix().endswith("Resources/Terminology")


def test_headless_loading_is_a_no_op(headless_app) -> None:
    assert not hasattr(slicer.modules, "terminologies")
    assert terminology.loadTerminology() is False


def test_slicer_terminologies_logic_lists_every_task_code(monkeypatch: pytest.MonkeyPatch) -> None:
    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    # as inside the application: slicer.modules.terminologies.logic()
    modules = types.SimpleNamespace(terminologies=types.SimpleNamespace(logic=lambda: logic))
    monkeypatch.setattr(slicer, "modules", modules, raising=False)
    assert terminology.loadTerminology() is True

    names = vtk.vtkStringArray()
    logic.GetLoadedTerminologyNames(names)
    assert TERMINOLOGY_CONTEXT in [names.GetValue(n) for n in range(names.GetNumberOfValues())]
    listed = set()
    for c in range(logic.GetNumberOfCategoriesInTerminology(TERMINOLOGY_CONTEXT)):
        category = slicer.vtkSlicerTerminologyCategory()
        logic.GetNthCategoryInTerminology(TERMINOLOGY_CONTEXT, c, category)
        for t in range(logic.GetNumberOfTypesInTerminologyCategory(TERMINOLOGY_CONTEXT, category)):
            kind = slicer.vtkSlicerTerminologyType()
            logic.GetNthTypeInTerminologyCategory(TERMINOLOGY_CONTEXT, category, t, kind)
            listed.add((category.GetCodeValue(), kind.GetCodeValue()))
    for label in task_labels():
        assert (label.terminology.category.value, label.terminology.type.value) in listed, label.name


def test_a_missing_file_is_a_warning_not_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path, caplog) -> None:
    monkeypatch.setattr(terminology, "SEARCH_PATHS", (tmp_path / "absent.term.json",))
    calls = []
    fake = types.SimpleNamespace(LoadTerminologyFromFile=calls.append)
    with caplog.at_level("WARNING"):
        assert terminology.loadTerminology(fake) is False
    assert calls == [] and "was not found" in caplog.text

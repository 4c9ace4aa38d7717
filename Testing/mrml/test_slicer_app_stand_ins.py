"""The stand-ins for Slicer's application layer behave like Slicer where a module could get it wrong.

A stand-in that accepts what Slicer rejects would let a broken module pass the fresh-Slicer test, so
the parts of ``parameterNodeWrapper`` and ``ScriptedLoadableModuleLogic`` the modules rely on are
checked here against the real MRML scene: annotations evaluated like Slicer's (``get_type_hints``),
defaults validated on creation, ``Choice``/``WithinRange`` enforced, values and node references kept
in the ``vtkMRMLScriptedModuleNode``, one ModifiedEvent per assignment, one parameter node per module.
"""

from __future__ import annotations

import sys
import types

import pytest

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()


def test_the_stand_ins_are_removed_afterwards(slicer_scene):
    from Testing.slicer_app_stand_ins import slicer_app_stand_ins

    with slicer_app_stand_ins():
        assert {"qt", "ctk", "slicer.parameterNodeWrapper"} <= set(sys.modules) and hasattr(slicer, "app")
    assert not {"qt", "ctk", "slicer.parameterNodeWrapper"} & set(sys.modules) and not hasattr(slicer, "app")


PREAMBLE = """
from __future__ import annotations
from typing import Annotated
import slicer
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
"""


def _define(source: str) -> type:
    """The class ``Parameters`` of a module made from ``source``, imported like a module file.

    ``typing.get_type_hints`` evaluates annotations in the module's globals, so the class must be
    defined at module level of a module in ``sys.modules`` (as a Slicer module file's classes are).
    """
    module = types.ModuleType("medfuse_stand_in_probe")
    sys.modules[module.__name__] = module
    try:
        exec(compile(PREAMBLE + source, "<probe>", "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module.Parameters


def _node(scene):
    return scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "parameters")


EXAMPLE = """
@parameterNodeWrapper
class Parameters:
    volume: slicer.vtkMRMLScalarVolumeNode
    method: Annotated[str, Choice(["bspline", "sr4zct"])] = "bspline"
    overlap: Annotated[float, WithinRange(0.0, 0.9)] = 0.5
    levels: int = 3
    mirroring: bool
"""


def test_values_defaults_and_node_references_live_in_the_mrml_node(slicer_app, slicer_scene):
    node = _node(slicer_scene)
    parameters = _define(EXAMPLE)(node)
    defaults = (parameters.volume, parameters.method, parameters.overlap, parameters.levels, parameters.mirroring)
    assert defaults == (None, "bspline", 0.5, 3, False)
    volume = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    parameters.volume = volume
    parameters.overlap = 0.25
    parameters.mirroring = True
    assert node.GetNodeReference("volume") is volume
    assert (node.GetParameter("overlap"), node.GetParameter("mirroring")) == ("0.25", "True")
    again = type(parameters)(node)  # a second wrapper (e.g. after a scene reload) reads what is stored
    assert (again.volume, again.overlap, again.mirroring, again.getValue("method")) == (volume, 0.25, True, "bspline")


def test_validators_reject_what_slicer_rejects(slicer_app, slicer_scene):
    parameters = _define(EXAMPLE)(_node(slicer_scene))
    with pytest.raises(ValueError, match="method"):
        parameters.method = "cubic"
    with pytest.raises(ValueError, match="overlap"):
        parameters.overlap = 1.5
    with pytest.raises(TypeError, match="levels"):
        parameters.levels = "3"
    with pytest.raises(TypeError, match="volume"):
        parameters.volume = slicer_scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    assert (parameters.method, parameters.overlap, parameters.levels) == ("bspline", 0.5, 3)


def test_a_default_outside_its_choices_fails_when_the_node_is_made(slicer_app, slicer_scene):
    wrapper = _define(
        """
@parameterNodeWrapper
class Parameters:
    method: Annotated[str, Choice(["bspline", "sr4zct"])] = "linear"
"""
    )
    with pytest.raises(ValueError, match="method"):
        wrapper(_node(slicer_scene))


def test_annotations_are_evaluated_like_slicer_does(slicer_app):
    # A name visible only inside a function (or never imported) is not in the module's globals:
    # Slicer's get_type_hints raises NameError at class creation, and so does the stand-in.
    with pytest.raises(NameError, match="vtkMRMLScalarVolumeNode"):
        _define(
            """
@parameterNodeWrapper
class Parameters:
    volume: vtkMRMLScalarVolumeNode
"""
        )


def test_a_type_the_stand_in_cannot_keep_is_a_clear_error(slicer_app):
    with pytest.raises(TypeError, match=r"Parameters\.spacing.*extend Testing/slicer_app_stand_ins.py"):
        _define(
            """
@parameterNodeWrapper
class Parameters:
    spacing: dict
"""
        )


def test_one_assignment_fires_one_modified_event(slicer_app, slicer_scene):
    import vtk

    parameters = _define(EXAMPLE)(_node(slicer_scene))
    events = []
    tag = parameters.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda caller, event: events.append(event))
    parameters.overlap = 0.7
    parameters.volume = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")
    parameters.RemoveObserver(tag)
    assert len(events) == 2


def test_logic_keeps_one_parameter_node_per_module(slicer_app, slicer_scene):
    from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

    class MedFuseExampleLogic(ScriptedLoadableModuleLogic):
        pass

    first = MedFuseExampleLogic().getParameterNode()
    second = MedFuseExampleLogic().getParameterNode()
    assert first is second and first.GetSingletonTag() == "MedFuseExample"
    assert first.GetAttribute("ModuleName") == "MedFuseExample"
    assert slicer_scene.GetNodeByID(first.GetID()) is first


def test_qt_widgets_refuse_to_be_made_headless(slicer_app):
    import qt

    with pytest.raises(RuntimeError, match=r"qt\.QWidget needs the Slicer application"):
        qt.QWidget()
    with pytest.raises(RuntimeError, match=r"ctk\.ctkCollapsibleButton needs the Slicer application"):
        __import__("ctk").ctkCollapsibleButton()
    assert slicer_app.testingEnabled()
    slicer.util.errorDisplay("Logged, not shown: Slicer's testing mode.")  # slicer-core's own function runs


def test_a_qt_timer_fires_only_when_the_test_says(slicer_app):
    import qt

    ticks = []
    timer = qt.QTimer()
    timer.setInterval(200)
    timer.connect("timeout()", lambda: ticks.append(len(ticks)))
    timer.fireTimeout()  # not started: nothing
    timer.start()
    timer.fireTimeout()
    timer.fireTimeout()
    timer.stop()
    timer.fireTimeout()
    assert ticks == [0, 1] and not timer.isActive() and timer.interval == 200

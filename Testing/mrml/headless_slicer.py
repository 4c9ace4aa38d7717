"""A headless Slicer: a real MRML scene with the module logics the desktop app would create.

slicer-core (PyPI) ships Slicer's MRML and module logics but not the application, so this module
does the few set-up steps the app normally does (see docs PLATFORM notes):

* a ``vtkMRMLScene`` and a ``vtkSlicerApplicationLogic`` bound to it, with a colour logic that has
  the default colour tables and empty slice/view logic collections;
* the module logics MedFuse uses, each given the application logic and the scene and registered
  with ``SetModuleLogic``; the Segmentations logic also registers the segmentation converters;
* ``slicer.mrmlScene`` and a ``slicer.modules`` namespace where ``slicer.modules.<name>.logic()``
  returns those logics, so most ``slicer.util`` helpers work.

Only the scene is needed by MedFuseLib; the rest is there so module Logic code written for the app
(``slicer.modules.volumes.logic()``, ``slicer.util.getNode``) runs unchanged in tests.
"""

from __future__ import annotations

import dataclasses
import types

import slicer
import vtk

__all__ = ["HeadlessSlicer", "headless_slicer", "reset_scene"]

#: (lowercase module name as in ``slicer.modules``, logic class name in slicer-core)
MODULE_LOGICS: tuple[tuple[str, str], ...] = (
    ("subjecthierarchy", "vtkSlicerSubjectHierarchyModuleLogic"),
    ("volumes", "vtkSlicerVolumesLogic"),
    ("segmentations", "vtkSlicerSegmentationsModuleLogic"),
    ("transforms", "vtkSlicerTransformLogic"),
    ("markups", "vtkSlicerMarkupsLogic"),
    ("data", "vtkSlicerDataModuleLogic"),
)


@dataclasses.dataclass
class HeadlessSlicer:
    """The objects the Slicer application would own."""

    scene: slicer.vtkMRMLScene
    application_logic: slicer.vtkSlicerApplicationLogic
    color_logic: slicer.vtkMRMLColorLogic
    logics: dict[str, object]


_instance: HeadlessSlicer | None = None


def _module_namespace(logic: object) -> types.SimpleNamespace:
    return types.SimpleNamespace(logic=lambda: logic)


def headless_slicer() -> HeadlessSlicer:
    """Build the headless application once per process (later calls return the same one)."""
    global _instance
    if _instance is not None:
        return _instance
    scene = slicer.vtkMRMLScene()
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetMRMLScene(scene)
    # The MRML colour logic adds the built-in tables (Grey, Labels, ...) when it gets the scene;
    # the desktop's vtkSlicerColorLogic would also read colour files that slicer-core does not ship.
    color_logic = slicer.vtkMRMLColorLogic()
    color_logic.SetMRMLApplicationLogic(application_logic)
    color_logic.SetMRMLScene(scene)
    if scene.GetFirstNodeByName("Grey") is None:
        color_logic.AddDefaultColorNodes()
    application_logic.SetColorLogic(color_logic)
    application_logic.SetSliceLogics(vtk.vtkCollection())
    application_logic.SetViewLogics(vtk.vtkCollection())

    logics: dict[str, object] = {}
    for name, class_name in MODULE_LOGICS:
        logic = getattr(slicer, class_name)()
        logic.SetMRMLApplicationLogic(application_logic)
        logic.SetMRMLScene(scene)  # Segmentations: registers the representation converters
        application_logic.SetModuleLogic(name, logic)
        logics[name] = logic

    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(**{name: _module_namespace(logic) for name, logic in logics.items()})
    _instance = HeadlessSlicer(scene, application_logic, color_logic, logics)
    return _instance


def reset_scene(app: HeadlessSlicer) -> slicer.vtkMRMLScene:
    """Remove every node a test added (the default colour tables stay) and return the scene."""
    app.scene.Clear(False)
    slicer.mrmlScene = app.scene
    return app.scene

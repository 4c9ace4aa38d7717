"""A headless Slicer: a real MRML scene with the module logics the desktop app would create.

slicer-core (PyPI) ships Slicer's MRML and module logics but not the application, so this module
does the few set-up steps the app normally does (see docs PLATFORM notes):

* a ``vtkMRMLScene`` and a ``vtkSlicerApplicationLogic`` bound to it, with a colour logic that has
  the default colour tables and empty slice/view logic collections;
* the module logics MedFuse uses, each given the application logic and the scene and registered
  with ``SetModuleLogic``; the Segmentations logic also registers the segmentation converters;
* ``slicer.mrmlScene`` and a ``slicer.modules`` namespace where ``slicer.modules.<name>.logic()``
  returns those logics, so most ``slicer.util`` helpers work;
* the subject hierarchy as the app keeps it (its Qt plugin logic, which slicer-core lacks): the
  scene's one ``vtkMRMLSubjectHierarchyNode`` is resolved again after every scene clear (a clear
  removes it, and ``scene.GetSubjectHierarchyNode()`` would go on returning the removed one), and
  each data node added to the scene gets its item under the scene item, and loses it when removed,
  as the app's subject hierarchy plugin logic does.

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


#: Data node classes that Slicer's subject hierarchy plugins (Volumes, Segmentations, Models, Markups,
#: Transforms, Tables, Texts) add to the hierarchy when such a node enters the scene.
SUBJECT_HIERARCHY_DATA_CLASSES = (
    "vtkMRMLVolumeNode",
    "vtkMRMLSegmentationNode",
    "vtkMRMLModelNode",
    "vtkMRMLMarkupsNode",
    "vtkMRMLTransformNode",
    "vtkMRMLTableNode",
    "vtkMRMLTextNode",
)


@vtk.calldata_type(vtk.VTK_OBJECT)
def _add_data_node_to_subject_hierarchy(scene, event, node) -> None:
    """What the app's subject hierarchy plugin logic does for a node added one by one (not on import)."""
    if node is None or scene.IsImporting() or node.GetHideFromEditors():
        return
    if not any(node.IsA(class_name) for class_name in SUBJECT_HIERARCHY_DATA_CLASSES):
        return
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if sh is not None and sh.GetItemByDataNode(node) == sh.GetInvalidItemID():
        sh.CreateItem(sh.GetSceneItemID(), node)


@vtk.calldata_type(vtk.VTK_OBJECT)
def _remove_data_node_from_subject_hierarchy(scene, event, node) -> None:
    """The app removes a data node's item with the node (its children stay); slicer-core would keep it dangling."""
    if node is None or scene.IsClosing() or node.IsA("vtkMRMLSubjectHierarchyNode"):
        return
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item = sh.GetItemByDataNode(node) if sh is not None else 0
    if item:
        sh.RemoveItem(item, False, False)


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

    slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(scene)
    scene.AddObserver(slicer.vtkMRMLScene.NodeAddedEvent, _add_data_node_to_subject_hierarchy)
    scene.AddObserver(slicer.vtkMRMLScene.NodeAboutToBeRemovedEvent, _remove_data_node_from_subject_hierarchy)

    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(**{name: _module_namespace(logic) for name, logic in logics.items()})
    _instance = HeadlessSlicer(scene, application_logic, color_logic, logics)
    return _instance


def reset_scene(app: HeadlessSlicer) -> slicer.vtkMRMLScene:
    """Remove every node a test added (the default colour tables stay) and return the scene.

    The subject hierarchy node that the clear removed is resolved again, as the app does at the end
    of a scene close, so ``scene.GetSubjectHierarchyNode()`` is an empty hierarchy in the scene.
    """
    app.scene.Clear(False)
    slicer.vtkMRMLSubjectHierarchyNode.ResolveSubjectHierarchy(app.scene)
    slicer.mrmlScene = app.scene
    return app.scene

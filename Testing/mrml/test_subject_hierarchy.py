"""Results land under the input's study in slicer-core's real subject hierarchy (issue 13, item 6).

DICOM import puts a series' volume under Patient > Study items (levels "Patient" and "Study"). A
MedFuse result (volume, segmentation, table, grid transform) must join the input's study, so it is
listed, saved and exported with it; an input that sits directly under the scene gives results under
the scene. The headless harness keeps the subject hierarchy as the app does (resolved after every
scene clear; data nodes get an item when added), so these run on the real ``vtkMRMLSubjectHierarchyNode``.
The bridge functions are checked one by one; each module's console call (``process``) is checked end
to end with the real backend on small real scans (``slow``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MEDFUSE_LIB_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseLib"
if str(MEDFUSE_LIB_DIR) not in sys.path:
    sys.path.insert(0, str(MEDFUSE_LIB_DIR))

from MedFuseLib import mrml_bridge  # noqa: E402  (needs slicer-core, checked above)

HEAD_CT = "head_ct/invesalius_ct0051_head.nii.gz"
PATIENT_LEVEL = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelPatient()
STUDY_LEVEL = slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()


@pytest.fixture(scope="module")
def small_ct(shared_data: Path) -> sitk.Image:
    """The real head CT, every 8th voxel in-plane and every 4th slice: 32 x 32 x 27."""
    return sitk.ReadImage(str(shared_data / HEAD_CT))[::8, ::8, ::4]


def _sh(scene):
    return scene.GetSubjectHierarchyNode()


def _dicom_study(scene, node, patient: str = "Anonymous", study: str = "CT head") -> int:
    """Put ``node`` under new Patient > Study items, as Slicer's DICOM import does; return the study item."""
    sh = _sh(scene)
    patient_item = sh.CreateSubjectItem(sh.GetSceneItemID(), patient)
    study_item = sh.CreateStudyItem(patient_item, study)
    sh.SetItemParent(sh.GetItemByDataNode(node), study_item)
    return study_item


def _parent(node) -> int:
    sh = _sh(node.GetScene())
    item = sh.GetItemByDataNode(node)
    assert item != sh.GetInvalidItemID(), f"{node.GetName()} has no subject hierarchy item"
    return sh.GetItemParent(item)


def _labels(ct: sitk.Image) -> sitk.Image:
    """A label image on the CT's grid: the brightest (bone) voxels are label 1."""
    voxels = (sitk.GetArrayFromImage(ct) > 300).astype(np.uint8)
    labels = sitk.GetImageFromArray(voxels)
    labels.CopyInformation(ct)
    return labels


def _results(scene, ct_node, ct: sitk.Image) -> list:
    """One result of each kind MedFuse adds, made by the bridge with the CT as reference."""
    from SlicerMedFuse.facade import Label

    volume = mrml_bridge.image_to_volume_node(ct, scene, "result volume", reference_node=ct_node)
    segmentation = mrml_bridge.labelmap_to_segmentation(
        _labels(ct), [Label(value=1, name="Bone", color=(241, 214, 145))], scene, "result", reference_node=ct_node
    )
    field = sitk.Image(list(ct.GetSize()), sitk.sitkVectorFloat64, 3)
    field.CopyInformation(ct)
    transform = mrml_bridge.displacement_field_to_grid_transform(
        field, scene, "result transform", fixed_node=ct_node, moving_node=ct_node
    )
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", "result table")
    mrml_bridge.place_under_study(table, ct_node)
    return [volume, segmentation, transform, table]


def test_the_harness_scene_has_one_subject_hierarchy_after_every_clear(headless_app, slicer_scene):
    from Testing.mrml.headless_slicer import reset_scene

    for _ in range(2):
        sh = _sh(slicer_scene)
        assert sh is not None and sh.GetScene() is slicer_scene
        assert slicer_scene.GetNumberOfNodesByClass("vtkMRMLSubjectHierarchyNode") == 1
        volume = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "added one by one")
        assert _parent(volume) == sh.GetSceneItemID()  # as the app's Volumes plugin adds it
        reset_scene(headless_app)


def test_a_removed_node_takes_its_item_along(slicer_scene):
    sh = _sh(slicer_scene)
    temporary = slicer_scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "temporary")
    item = sh.GetItemByDataNode(temporary)
    slicer_scene.RemoveNode(temporary)
    assert sh.GetItemDataNode(item) is None and sh.GetItemName(item) == ""


def test_dicom_like_study_has_the_dicom_levels(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT")
    study = _dicom_study(slicer_scene, ct_node)
    sh = _sh(slicer_scene)
    assert sh.GetItemLevel(study) == STUDY_LEVEL
    assert sh.GetItemLevel(sh.GetItemParent(study)) == PATIENT_LEVEL


def test_results_land_under_the_input_study(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT")
    study = _dicom_study(slicer_scene, ct_node)
    other_study = _dicom_study(
        slicer_scene, slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "MR"), "Other", "MR"
    )
    for node in _results(slicer_scene, ct_node, small_ct):
        assert _parent(node) == study, f"{node.GetClassName()} '{node.GetName()}' is not under the CT's study"
    assert _parent(ct_node) == study  # the input stays where it was
    ids = vtk.vtkIdList()
    _sh(slicer_scene).GetItemChildren(other_study, ids)
    assert ids.GetNumberOfIds() == 1  # nothing strayed into another study


def test_a_result_made_before_the_study_existed_moves_into_it(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT")
    output = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "chosen output")  # e.g. picked in the panel
    study = _dicom_study(slicer_scene, ct_node)
    mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "ignored", node=output, reference_node=ct_node)
    assert _parent(output) == study


def test_an_input_without_a_study_gives_results_under_the_scene(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT from a NIfTI file")
    scene_item = _sh(slicer_scene).GetSceneItemID()
    assert _parent(ct_node) == scene_item
    for node in _results(slicer_scene, ct_node, small_ct):
        assert _parent(node) == scene_item, f"{node.GetClassName()} '{node.GetName()}' left the scene level"


def test_an_input_in_a_folder_of_a_study_keeps_its_results_beside_it(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT")
    study = _dicom_study(slicer_scene, ct_node)
    sh = _sh(slicer_scene)
    folder = sh.CreateFolderItem(study, "Reconstructions")
    sh.SetItemParent(sh.GetItemByDataNode(ct_node), folder)
    [volume, *_rest] = _results(slicer_scene, ct_node, small_ct)
    assert _parent(volume) == folder and sh.GetItemParent(folder) == study


def test_a_reference_without_an_item_or_scene_changes_nothing(slicer_scene, small_ct):
    ct_node = mrml_bridge.image_to_volume_node(small_ct, slicer_scene, "CT")
    sh = _sh(slicer_scene)
    sh.RemoveItem(sh.GetItemByDataNode(ct_node), False, False)  # e.g. a hidden node
    table = slicer_scene.AddNewNodeByClass("vtkMRMLTableNode", "result table")
    mrml_bridge.place_under_study(table, ct_node)
    mrml_bridge.place_under_study(table, None)
    mrml_bridge.place_under_study(slicer.vtkMRMLTableNode(), ct_node)  # not in a scene
    assert _parent(table) == sh.GetSceneItemID()


# --- each module's results, through its console API and the real backend ---------------------------
def _module_results(module: str, inputs: list) -> list:
    """Run one module's documented console call on ``inputs``; return every node it made."""
    if module == "hemorrhage":
        from MedFuseHemorrhageLib import HemorrhageLogic

        return list(HemorrhageLogic().process(inputs[0], device="cpu"))
    if module == "superres":
        from MedFuseSuperResolutionLib import SuperResolutionLogic

        return [SuperResolutionLogic().process(inputs[0], method="bspline")]
    if module == "registration":
        from MedFuseRegistrationLib import RegistrationLogic

        outputs = RegistrationLogic().process(inputs[0], inputs[1], preset="fast", device="cpu")
        return [outputs.transform, outputs.volume]
    from MedFuseBreastLib import BreastLogic

    return [BreastLogic().process(inputs[0], device="cpu").segmentation]


#: module -> the real scans of its inputs (cut small), the first one being the reference.
MODULE_INPUTS = {
    "hemorrhage": ("head_ct/invesalius_ct0051_head.nii.gz",),
    "superres": ("head_ct/invesalius_ct0051_head.nii.gz",),
    "registration": ("brain_registration/vxm_test_scan_t1.nii.gz", "sr/colin27_ch2_1mm.nii.gz"),
    "breast": ("breast_mri/pyradiomics_breast1_image.nrrd",),
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MODULE_INPUTS))
def test_every_module_puts_its_results_under_the_input_study(slicer_scene, shared_data: Path, module: str):
    modules = Path(__file__).resolve().parents[2] / "Modules"
    for folder in sorted(modules.iterdir()):
        if folder.is_dir() and str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    inputs = []
    for index, relative in enumerate(MODULE_INPUTS[module]):
        image = sitk.ReadImage(str(shared_data / relative))
        step = 4 if max(image.GetSize()) > 128 else 1
        inputs.append(mrml_bridge.image_to_volume_node(image[::step, ::step, ::step], slicer_scene, f"input {index}"))
    study = _dicom_study(slicer_scene, inputs[0])
    for node in inputs[1:]:  # a registration's moving image from the same study
        _sh(slicer_scene).SetItemParent(_sh(slicer_scene).GetItemByDataNode(node), study)

    results = [node for node in _module_results(module, inputs) if node is not None]

    assert results, f"{module} made no nodes"
    for node in results:
        assert _parent(node) == study, f"{module}: {node.GetClassName()} '{node.GetName()}' is not under the study"

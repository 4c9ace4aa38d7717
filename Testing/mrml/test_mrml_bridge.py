"""MedFuseLib.mrml_bridge on a real (headless) MRML scene with real scans."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

from MedFuseLib.mrml_bridge import (  # noqa: E402  (needs slicer-core, checked above)
    displacement_field_to_grid_transform,
    image_to_volume_node,
    labelmap_to_segmentation,
    place_under_study,
    segmentation_to_labelmap,
    volume_node_to_image,
)

from SlicerMedFuse.facade import CodedConcept, Label, Terminology  # noqa: E402
from SlicerMedFuse.geometry.coordinates import lps_to_ras_points  # noqa: E402

pytestmark = pytest.mark.slicer

HEAD_CT = "head_ct/invesalius_ct0051_head.nii.gz"  # LPS direction diag(1, -1, 1)
T1_LIA = "brain_registration/vxm_test_scan_t1.nii.gz"  # oblique-free but permuted: LIA
ASEG = "brain_registration/vxm_test_scan_aseg.nii.gz"

ASEG_LABELS = (
    Label(
        2,
        "Left cerebral white matter",
        (245, 245, 245),
        Terminology(
            CodedConcept("SCT", "123037004", "Anatomical Structure"),
            CodedConcept("SCT", "68523003", "Cerebral white matter"),
            CodedConcept("SCT", "7771000", "Left"),
        ),
    ),
    Label(3, "Left cerebral cortex", (205, 62, 78)),
    Label(4, "Left lateral ventricle", (120, 18, 134)),
    Label(99, "Never present", (0, 200, 0)),  # absent from the image: still gets an (empty) segment
)


def _assert_same_geometry(a: sitk.Image, b: sitk.Image, tolerance: float = 1e-6) -> None:
    assert a.GetSize() == b.GetSize()
    np.testing.assert_allclose(a.GetSpacing(), b.GetSpacing(), atol=tolerance)
    np.testing.assert_allclose(a.GetOrigin(), b.GetOrigin(), atol=tolerance)
    np.testing.assert_allclose(a.GetDirection(), b.GetDirection(), atol=tolerance)


def _lps_corners(image: sitk.Image) -> np.ndarray:
    size = image.GetSize()
    corners = itertools.product(*[(-0.5, n - 0.5) for n in size])  # outer voxel faces, like Slicer's bounds
    return np.array([image.TransformContinuousIndexToPhysicalPoint(c) for c in corners])


def _study_with(scene, node):
    sh = scene.GetSubjectHierarchyNode()
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient")
    study = sh.CreateStudyItem(patient, "Study")
    sh.SetItemParent(sh.GetItemByDataNode(node), study)  # the node got its item when added, as in the app
    return study


@pytest.mark.parametrize("relative_path", [HEAD_CT, T1_LIA])
def test_volume_round_trip(relative_path: str, shared_data: Path, slicer_scene, tmp_path: Path) -> None:
    original = sitk.ReadImage(str(shared_data / relative_path))
    node = image_to_volume_node(original, slicer_scene, "volume")
    assert node.GetDisplayNode() is not None

    back = volume_node_to_image(node)
    _assert_same_geometry(original, back)
    assert back.GetPixelID() == original.GetPixelID()
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(original))

    # RAS bounds of the node = the LPS corners flipped
    bounds = np.zeros(6)
    node.GetRASBounds(bounds)
    corners_ras = lps_to_ras_points(_lps_corners(original))
    np.testing.assert_allclose(bounds[0::2], corners_ras.min(axis=0), atol=1e-6)
    np.testing.assert_allclose(bounds[1::2], corners_ras.max(axis=0), atol=1e-6)

    # Slicer's own NRRD writer agrees with our geometry conversion
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    slicer_scene.AddNode(storage)
    path = tmp_path / "saved.nrrd"
    storage.SetFileName(str(path))
    assert storage.WriteData(node)
    saved = sitk.ReadImage(str(path))
    _assert_same_geometry(original, saved)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(saved), sitk.GetArrayViewFromImage(original))


def test_labelmap_and_vector_volumes_round_trip(shared_data: Path, slicer_scene) -> None:
    aseg = sitk.ReadImage(str(shared_data / ASEG))
    node = image_to_volume_node(aseg, slicer_scene, "aseg", class_name="vtkMRMLLabelMapVolumeNode")
    assert node.IsA("vtkMRMLLabelMapVolumeNode") and node.GetDisplayNode() is not None
    back = volume_node_to_image(node)
    _assert_same_geometry(aseg, back)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(aseg))

    rgb = sitk.Compose([sitk.Cast(aseg[:40, :30, :20], sitk.sitkFloat32)] * 3)
    vector_node = image_to_volume_node(rgb, slicer_scene, "rgb", class_name="vtkMRMLVectorVolumeNode")
    vector_back = volume_node_to_image(vector_node)
    assert vector_back.GetNumberOfComponentsPerPixel() == 3
    _assert_same_geometry(rgb, vector_back)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(vector_back), sitk.GetArrayViewFromImage(rgb))


def test_output_volume_joins_reference_study_and_window_level(shared_data: Path, slicer_scene) -> None:
    image = sitk.ReadImage(str(shared_data / HEAD_CT))
    reference = image_to_volume_node(image, slicer_scene, "ct")
    reference.GetDisplayNode().AutoWindowLevelOff()
    reference.GetDisplayNode().SetWindowLevel(80.0, 40.0)
    study = _study_with(slicer_scene, reference)

    output = image_to_volume_node(image, slicer_scene, "ct result", reference_node=reference)
    sh = slicer_scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(output)) == study
    assert (output.GetDisplayNode().GetWindow(), output.GetDisplayNode().GetLevel()) == (80.0, 40.0)

    # updating in place keeps the node, changes voxels and geometry
    shifted = sitk.Image(image)
    shifted.SetOrigin((1.0, 2.0, 3.0))
    same = image_to_volume_node(shifted, slicer_scene, "ignored", node=output)
    assert same is output and same.GetName() == "ct result"
    np.testing.assert_allclose(volume_node_to_image(same).GetOrigin(), (1.0, 2.0, 3.0))


def test_labelmap_to_segmentation_and_back(shared_data: Path, slicer_scene) -> None:
    aseg = sitk.ReadImage(str(shared_data / ASEG))
    reference = image_to_volume_node(sitk.ReadImage(str(shared_data / T1_LIA)), slicer_scene, "t1")
    study = _study_with(slicer_scene, reference)

    node = labelmap_to_segmentation(aseg, ASEG_LABELS, slicer_scene, "aseg", reference_node=reference)
    segmentation = node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == len(ASEG_LABELS)
    voxels = sitk.GetArrayViewFromImage(aseg)
    for label in ASEG_LABELS:
        segment_id = segmentation.GetSegmentIdBySegmentName(label.name)
        assert segment_id == label.name.replace(" ", "_")
        segment = segmentation.GetSegment(segment_id)
        np.testing.assert_allclose(segment.GetColor(), np.array(label.color) / 255.0)
        if label.terminology is not None:  # (without one, Slicer adds its own default entry)
            tag = vtk.reference("")
            assert segment.GetTag("TerminologyEntry", tag)
            assert str(tag) == label.terminology.to_slicer_entry()
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, segment_id, reference)
        assert int(np.count_nonzero(mask)) == int(np.count_nonzero(voxels == label.value))

    sh = slicer_scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study
    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is reference

    back = segmentation_to_labelmap(node, reference, ASEG_LABELS)
    _assert_same_geometry(aseg, back)
    expected = np.where(np.isin(voxels, [label.value for label in ASEG_LABELS]), voxels, 0)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), expected)

    # a second run replaces the segments of the same node
    fewer = ASEG_LABELS[:2]
    again = labelmap_to_segmentation(aseg, fewer, slicer_scene, "ignored", reference_node=reference, node=node)
    assert again is node and segmentation.GetNumberOfSegments() == 2


def test_labelmap_on_other_grid_is_resampled_to_reference(slicer_scene) -> None:
    reference_image = sitk.Image([20, 16, 12], sitk.sitkInt16)
    reference_image.SetSpacing((1.0, 1.0, 2.0))
    reference = image_to_volume_node(reference_image, slicer_scene, "reference")
    fine = sitk.Image([40, 32, 24], sitk.sitkUInt8)  # half spacing, same extent
    fine.SetSpacing((0.5, 0.5, 1.0))
    fine.SetOrigin((-0.25, -0.25, -0.5))
    fine[10:20, 8:16, 4:12] = 1
    node = labelmap_to_segmentation(fine, [Label(1, "box", (255, 0, 0))], slicer_scene, "seg", reference_node=reference)
    back = sitk.GetArrayFromImage(segmentation_to_labelmap(node, reference, [Label(1, "box", (255, 0, 0))]))
    assert back.shape == (12, 16, 20)
    assert np.count_nonzero(back) == 5 * 4 * 4 and back[2:6, 4:8, 5:10].all()


def _smooth_random_field(rng: np.random.Generator) -> sitk.Image:
    size = (14, 12, 10)
    field = np.zeros((*reversed(size), 3))
    k, j, i = np.meshgrid(*[np.linspace(0, np.pi, n) for n in reversed(size)], indexing="ij")
    for component in range(3):
        a, b, c = rng.uniform(0.5, 2.0, 3)
        field[..., component] = rng.uniform(1.0, 4.0) * np.sin(a * i + b) * np.cos(b * j + c) * np.sin(c * k + a)
    image = sitk.GetImageFromArray(field, isVector=True)
    image.SetSpacing((2.0, 2.5, 3.0))
    image.SetOrigin((12.0, -30.0, 45.0))
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), 0.6).GetMatrix()  # oblique grid
    image.SetDirection(rotation)
    return image


def test_displacement_field_matches_simpleitk(slicer_scene) -> None:
    rng = np.random.default_rng(7)
    field = _smooth_random_field(rng)
    fixed = image_to_volume_node(sitk.Image([4, 4, 4], sitk.sitkUInt8), slicer_scene, "fixed")
    moving = image_to_volume_node(sitk.Image([4, 4, 4], sitk.sitkUInt8), slicer_scene, "moving")
    study = _study_with(slicer_scene, fixed)
    node = displacement_field_to_grid_transform(field, slicer_scene, "warp", fixed_node=fixed, moving_node=moving)

    reference = sitk.DisplacementFieldTransform(sitk.Image(field))  # the constructor takes ownership of its argument
    transform = node.GetTransformFromParent()
    size = np.array(field.GetSize())
    for index in rng.uniform(0.5, size - 1.5, size=(200, 3)):
        p_lps = field.TransformContinuousIndexToPhysicalPoint(index.tolist())
        expected_ras = lps_to_ras_points(np.array(reference.TransformPoint(p_lps)))
        actual_ras = np.array(transform.TransformPoint(lps_to_ras_points(np.array(p_lps)).tolist()))
        np.testing.assert_allclose(actual_ras, expected_ras, atol=1e-4)

    assert node.GetNodeReference("fixedVolume") is fixed and node.GetNodeReference("movingVolume") is moving
    sh = slicer_scene.GetSubjectHierarchyNode()
    assert sh.GetItemParent(sh.GetItemByDataNode(node)) == study
    np.testing.assert_allclose(
        slicer.util.arrayFromGridTransform(node)[3, 4, 5],
        lps_to_ras_points(sitk.GetArrayViewFromImage(field)[3, 4, 5]),
    )


def test_place_under_study_needs_a_study(slicer_scene) -> None:
    a = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "a")
    b = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "b")
    sh = slicer_scene.GetSubjectHierarchyNode()
    place_under_study(b, a)  # the reference has no item: nothing happens
    sh.CreateItem(sh.GetSceneItemID(), a)
    place_under_study(b, a)  # the reference sits under the scene: nothing happens
    assert sh.GetItemParent(sh.GetItemByDataNode(b)) in (sh.GetInvalidItemID(), sh.GetSceneItemID())  # not moved
    study = _study_with(slicer_scene, slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "c"))
    sh.SetItemParent(sh.GetItemByDataNode(a), study)
    place_under_study(b, a)
    assert sh.GetItemParent(sh.GetItemByDataNode(b)) == study


def test_linear_parent_transform_is_applied_and_non_linear_refused(slicer_scene) -> None:
    image = sitk.Image([8, 8, 8], sitk.sitkInt16)
    node = image_to_volume_node(image, slicer_scene, "moved")
    transform = slicer_scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(np.array(
        [[1, 0, 0, 10.0], [0, 1, 0, 0], [0, 0, 1, 5.0], [0, 0, 0, 1]]
    )))  # fmt: skip
    node.SetAndObserveTransformNodeID(transform.GetID())
    np.testing.assert_allclose(volume_node_to_image(node).GetOrigin(), (-10.0, 0.0, 5.0))  # RAS +10 x = LPS -10 x

    image_to_volume_node(image, slicer_scene, "", node=node)  # world geometry kept under the transform
    np.testing.assert_allclose(volume_node_to_image(node).GetOrigin(), (0.0, 0.0, 0.0), atol=1e-9)

    field = sitk.Image([4, 4, 4], sitk.sitkVectorFloat64, 3)
    warp = displacement_field_to_grid_transform(field, slicer_scene, "warp")
    node.SetAndObserveTransformNodeID(warp.GetID())
    with pytest.raises(ValueError, match="harden"):
        volume_node_to_image(node)

"""MedFuse Registration module logic on a headless MRML scene, through the real backend process.

The pair is the real T1 of ../shared/data/brain_registration at 4 mm (40 x 48 x 56 voxels) and a
copy moved by a known shift (about 9 mm) and smooth B-spline field (a few mm); the moving segmentation holds five
aseg structures of the warped copy. The backend runs the ``fast`` preset with few iterations, so a
run takes seconds: these tests check what reaches the scene, not registration accuracy (the
backend tests and the benchmark do that).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseRegistration"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseLib.mrml_bridge import image_to_volume_node, labelmap_to_segmentation  # noqa: E402
from MedFuseRegistrationLib import (  # noqa: E402  (needs slicer-core, checked above)
    PANEL_PARAMETERS,
    PRESET_FOLDER_NAME,
    RegistrationLogic,
    builtinPresetValues,
    defaultPresetDirectory,
    panelValues,
    parameterChoices,
    parameterRange,
)

from SlicerMedFuse.facade import Label  # noqa: E402
from SlicerMedFuse.geometry import resample_to_spacing  # noqa: E402
from SlicerMedFuse.registration.options import REGULARIZERS, SIMILARITIES  # noqa: E402
from SlicerMedFuse.registration.presets import PRESET_DIR, PRESETS, load_preset  # noqa: E402

pytestmark = pytest.mark.slicer

#: Few iterations: a few seconds per backend run (accuracy is tested in Testing/backend).
QUICK = {"iterations": "30,20,10"}
QUICK_LINEAR = {"linear_iterations": [20, 10]}
#: aseg structures carried over as segments: value, name, colour.
STRUCTURES = (
    Label(2, "Left white matter", (245, 245, 245)),
    Label(41, "Right white matter", (220, 220, 220)),
    Label(4, "Left lateral ventricle", (120, 18, 134)),
    Label(43, "Right lateral ventricle", (120, 18, 200)),
    Label(16, "Brain stem", (119, 159, 176)),
)
VENTRICLE_TERMINOLOGY = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure~"
    "SCT^35764002^Lateral Ventricle~^^~Anatomic codes - DICOM master list~^^~^^"
)


# --- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pair(shared_data: Path) -> dict[str, sitk.Image]:
    folder = shared_data / "brain_registration"
    t1 = resample_to_spacing(sitk.ReadImage(str(folder / "vxm_test_scan_t1.nii.gz")), 4.0)
    aseg = resample_to_spacing(sitk.ReadImage(str(folder / "vxm_test_scan_aseg.nii.gz")), 4.0, interpolation="nearest")
    bspline = sitk.BSplineTransformInitializer(t1, [3, 3, 3], order=3)
    bspline.SetParameters(np.random.default_rng(0).normal(0.0, 3.0, len(bspline.GetParameters())).tolist())
    # a shift of 1-2 voxels on top, so that the structures overlap clearly less before registration
    warp = sitk.CompositeTransform([sitk.TranslationTransform(3, (6.0, -5.0, 4.0)), bspline])
    return {
        "fixed": t1,
        "fixed_aseg": aseg,
        "moving": sitk.Resample(t1, t1, warp, sitk.sitkLinear, 0.0),
        "moving_aseg": sitk.Resample(aseg, aseg, warp, sitk.sitkNearestNeighbor, 0),
    }


@pytest.fixture
def nodes(slicer_scene, pair):
    fixed = image_to_volume_node(pair["fixed"], slicer_scene, "T1 fixed")
    moving = image_to_volume_node(pair["moving"], slicer_scene, "T1 moving")
    segmentation = labelmap_to_segmentation(
        pair["moving_aseg"], STRUCTURES, slicer_scene, "moving structures", reference_node=moving
    )
    ventricle = segmentation.GetSegmentation().GetSegment(
        segmentation.GetSegmentation().GetSegmentIdBySegmentName("Left lateral ventricle")
    )
    ventricle.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), VENTRICLE_TERMINOLOGY)
    return {"fixed": fixed, "moving": moving, "segmentation": segmentation}


@pytest.fixture
def logic(tmp_path: Path) -> RegistrationLogic:
    return RegistrationLogic(presetDirectory=tmp_path / "settings" / PRESET_FOLDER_NAME)


class RefusingRunner:
    """A process runner that fails the test if anything tries to start the backend."""

    def start(self, command, *, env=None, cwd=None):
        raise AssertionError(f"the backend should not have been started: {command}")


def _matrix(node, method: str = "GetIJKToRASMatrix") -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    getattr(node, method)(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _node_ids(scene) -> set[str]:
    collection = scene.GetNodes()
    return {collection.GetItemAsObject(n).GetID() for n in range(collection.GetNumberOfItems())}


def _segment_masks(segmentation_node, reference_node) -> dict[str, np.ndarray]:
    segmentation = segmentation_node.GetSegmentation()
    masks = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, reference_node)
        masks[segmentation.GetSegment(segment_id).GetName()] = voxels > 0
    return masks


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def _slicer_resample(moving_node, fixed_node, transform_node) -> np.ndarray:
    """The moving volume on the fixed grid through the transform node, resampled by VTK as Slicer's views do.

    Fixed IJK -> RAS (world) -> the transform node's from-world mapping (world -> moving space) ->
    moving IJK, then linear interpolation of the moving voxels (``vtkImageReslice``).
    """
    world_to_moving = vtk.vtkGeneralTransform()
    transform_node.GetTransformFromWorld(world_to_moving)
    chain = vtk.vtkGeneralTransform()
    chain.PostMultiply()  # each Concatenate is applied after the previous one
    for step in (
        _vtk_matrix(_matrix(fixed_node)),
        world_to_moving,
        _vtk_matrix(_matrix(moving_node, "GetRASToIJKMatrix")),
    ):
        chain.Concatenate(step)
    reslice = vtk.vtkImageReslice()
    reslice.SetInputData(moving_node.GetImageData())
    reslice.SetResliceTransform(chain)
    reslice.SetInterpolationModeToLinear()
    dims = fixed_node.GetImageData().GetDimensions()
    reslice.SetOutputExtent(0, dims[0] - 1, 0, dims[1] - 1, 0, dims[2] - 1)
    reslice.SetOutputOrigin(0.0, 0.0, 0.0)
    reslice.SetOutputSpacing(1.0, 1.0, 1.0)
    reslice.SetBackgroundLevel(0.0)
    reslice.Update()
    from vtk.util import numpy_support

    return numpy_support.vtk_to_numpy(reslice.GetOutput().GetPointData().GetScalars()).reshape(dims[::-1])


def _vtk_matrix(array: np.ndarray) -> vtk.vtkMatrixToLinearTransform:
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    transform = vtk.vtkMatrixToLinearTransform()
    transform.SetInput(matrix)
    return transform


# --- what the panel offers ------------------------------------------------------------------------
def test_choices_ranges_and_defaults_come_from_the_backend() -> None:
    assert parameterChoices("similarity") == SIMILARITIES
    assert parameterChoices("regularizer") == REGULARIZERS
    assert parameterChoices("label_interpolation") == ("label", "nearest")
    assert parameterRange("levels") == (1.0, 6.0)
    fast = panelValues(builtinPresetValues("fast"))
    assert set(fast) == set(PANEL_PARAMETERS)
    assert fast["iterations"] == ",".join(str(n) for n in load_preset("fast")["iterations"])


def test_user_presets_round_trip_through_the_settings_folder(tmp_path: Path, logic: RegistrationLogic) -> None:
    folder = tmp_path / "settings" / PRESET_FOLDER_NAME
    installed = sorted(path.name for path in PRESET_DIR.iterdir())
    overrides = {"similarity": "mind", "iterations": "50, 30,10", "gamma": 20.0, "diffeomorphic": True}

    path = logic.saveUserPreset("My brain T1-T2", base="multimodal", overrides=overrides, description="tested")
    assert path == folder / "My brain T1-T2.json" and path.is_file()
    assert sorted(p.name for p in PRESET_DIR.iterdir()) == installed  # nothing written into the installation
    assert logic.presetNames() == [*PRESETS, "My brain T1-T2"]
    assert logic.isUserPreset("My brain T1-T2") and not logic.isUserPreset("fast")
    assert logic.presetDescription("My brain T1-T2") == "tested"

    expected = builtinPresetValues("multimodal") | {"similarity": "mind", "iterations": [50, 30, 10], "gamma": 20.0}
    expected["diffeomorphic"] = True
    # a new logic (the next Slicer session) reads the same values, and so does the backend
    again = RegistrationLogic(presetDirectory=folder)
    assert again.presetValues("My brain T1-T2") == expected
    assert load_preset(path) == expected
    assert json.loads(path.read_text(encoding="utf-8"))["base"] == "multimodal"

    # the backend gets the file; panel values equal to the preset's are not sent as overrides
    params = again.presetParameters("My brain T1-T2", panelValues(expected))
    assert params["preset"] == str(path)
    assert all(params[name] is None for name in PANEL_PARAMETERS)
    params = again.presetParameters("My brain T1-T2", {"levels": 2, "iterations": "40,20"})
    assert (params["levels"], params["iterations"]) == (2, "40,20")

    # saving from a user preset keeps its built-in base; delete removes the file
    copy = again.saveUserPreset("copy", base="My brain T1-T2", overrides={"gamma": 30.0})
    assert json.loads(copy.read_text(encoding="utf-8"))["base"] == "multimodal"
    again.deleteUserPreset("copy")
    assert not copy.exists() and again.presetNames() == [*PRESETS, "My brain T1-T2"]


@pytest.mark.parametrize(
    ("name", "overrides", "fragment"),
    [
        ("fast", {}, "is a built-in preset"),
        ("../outside", {}, "not usable as a file name"),
        ("", {}, "not usable as a file name"),
        ("short", {"iterations": "100,60"}, "iteration"),
        ("unknown", {"speed": 3}, "Unknown registration parameter"),
        ("letters", {"iterations": "many"}, "comma-separated numbers"),
    ],
)
def test_bad_presets_give_one_sentence(logic: RegistrationLogic, name: str, overrides: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment) as raised:
        logic.saveUserPreset(name, overrides=overrides)
    assert "\n" not in str(raised.value)
    assert logic.userPresets.names() == []


def test_the_default_preset_folder_outside_slicer_is_under_medfuse_home(isolated_medfuse_home: Path) -> None:
    assert getattr(slicer, "app", None) is None  # slicer-core: no application settings file
    assert defaultPresetDirectory() == isolated_medfuse_home / PRESET_FOLDER_NAME


def test_result_summary_shows_similarity_folding_time_and_warnings() -> None:
    report = {
        "similarity": {"metric": "lncc", "higher_is_better": True, "before": 0.688, "after": 0.896},
        "folding_percent": 0.0,
        "timings_s": {"total": 15.6},
        "device": {"name": "cpu", "kind": "cpu", "threads": 2, "amp": False},
        "warnings": ["The fixed image has 860160 voxels, more than the budget max_voxels=100000: ..."],
    }
    summary = RegistrationLogic.resultSummary(report)
    first, warning = summary.split("\n")
    assert first == "Done: LNCC 0.688 -> 0.896 (higher is better); voxels with |J| <= 0: 0 %; 15.6 s on cpu."
    assert warning.startswith("The fixed image has 860160 voxels")
    assert RegistrationLogic.resultSummary({}) == "Done."


# --- input validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no fixed", "Select a fixed volume"),
        ("same node", "is selected as both"),
        ("single slice", "single slice"),
        ("colour voxels", "colour or vector voxels"),
        ("empty mask", "mask 'empty' is empty"),
        ("duplicate segment names", "several segments named"),
        ("no segments", "has no segments"),
        ("unknown preset", "Unknown registration preset"),
    ],
)
def test_invalid_inputs_give_one_sentence(slicer_scene, nodes, logic: RegistrationLogic, case: str, fragment: str):
    fixed, moving = nodes["fixed"], nodes["moving"]
    options: dict = {}
    if case == "no fixed":
        fixed = None
    elif case == "same node":
        moving = fixed
    elif case == "single slice":
        moving = slicer.util.addVolumeFromArray(np.ones((1, 16, 16), np.float32), name="single")
    elif case == "colour voxels":
        moving = slicer.util.addVolumeFromArray(
            np.zeros((4, 8, 8, 3), np.uint8), name="rgb", nodeClassName="vtkMRMLVectorVolumeNode"
        )
    elif case == "empty mask":
        empty = slicer.util.addVolumeFromArray(
            np.zeros((56, 48, 40), np.uint8), name="empty", nodeClassName="vtkMRMLLabelMapVolumeNode"
        )
        options["fixedMask"] = empty
    elif case in ("duplicate segment names", "no segments"):
        segmentation = slicer_scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "mine")
        if case == "duplicate segment names":
            for _ in range(2):
                segmentation.GetSegmentation().AddEmptySegment("", "Tumour")
        options["movingSegmentation"] = segmentation
    elif case == "unknown preset":
        options["preset"] = "fastest"
    logic.runner = RefusingRunner()
    with pytest.raises(ValueError, match=fragment) as raised:
        logic.startJob(fixed, moving, **options)
    assert "\n" not in str(raised.value)


def test_masks_and_segments_reach_the_backend_on_their_volume_grid_without_touching_the_scene(
    slicer_scene, nodes, logic: RegistrationLogic, pair
) -> None:
    fixed = nodes["fixed"]
    coarse = resample_to_spacing(pair["fixed_aseg"] > 0, 8.0, interpolation="nearest")  # the brain at 8 mm
    mask = image_to_volume_node(coarse, slicer_scene, "brain mask", class_name="vtkMRMLLabelMapVolumeNode")
    mask_voxels = slicer.util.arrayFromVolume(mask).copy()
    before = _node_ids(slicer_scene)

    assert logic._maskInput(None, fixed, "fixed") is None
    resampled = logic._maskInput(mask, fixed, "fixed")
    assert resampled is not mask and resampled.GetScene() is None  # a detached helper, not a scene node
    assert resampled.GetImageData().GetDimensions() == fixed.GetImageData().GetDimensions()
    np.testing.assert_allclose(_matrix(resampled), _matrix(fixed), atol=1e-6)
    expected = sitk.Resample(coarse, pair["fixed"], sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(resampled) > 0, sitk.GetArrayViewFromImage(expected) > 0)
    same_grid = image_to_volume_node(
        pair["fixed_aseg"] > 0, slicer_scene, "fine mask", class_name="vtkMRMLLabelMapVolumeNode"
    )
    assert logic._maskInput(same_grid, fixed, "fixed") is same_grid  # already on the grid: passed as it is

    labels_node, labels, terminology = logic._segmentationInput(nodes["segmentation"], nodes["moving"])
    assert labels_node.GetScene() is None
    assert [(label.value, label.name) for label in labels] == [(i + 1, s.name) for i, s in enumerate(STRUCTURES)]
    assert terminology["Left lateral ventricle"] == VENTRICLE_TERMINOLOGY  # the others carry Slicer's default entry
    carried = slicer.util.arrayFromVolume(labels_node)
    moving_aseg = sitk.GetArrayViewFromImage(pair["moving_aseg"])
    for label, structure in zip(labels, STRUCTURES, strict=True):
        np.testing.assert_array_equal(carried == label.value, moving_aseg == structure.value)

    np.testing.assert_array_equal(slicer.util.arrayFromVolume(mask), mask_voxels)
    assert _node_ids(slicer_scene) - before == {same_grid.GetID(), same_grid.GetDisplayNodeID()}


# --- the real backend -----------------------------------------------------------------------------
def test_grid_transform_reproduces_the_backend_warp_and_segments_carry_over(
    slicer_scene, nodes, logic: RegistrationLogic, pair
) -> None:
    fixed, moving, segmentation = nodes["fixed"], nodes["moving"], nodes["segmentation"]
    moving_voxels, moving_matrix = slicer.util.arrayFromVolume(moving).copy(), _matrix(moving)
    source_masks = _segment_masks(segmentation, moving)

    mine = slicer_scene.AddNewNodeByClass("vtkMRMLGridTransformNode", "my transform")
    before_ids = _node_ids(slicer_scene)

    outputs = logic.process(
        fixed,
        moving,
        movingSegmentation=segmentation,
        transformNode=mine,
        overrides={**QUICK, **QUICK_LINEAR},
        device="cpu",
    )

    # the transform: the given grid transform node, with its fixed/moving references
    transform = outputs.transform
    assert transform is mine and transform.IsA("vtkMRMLGridTransformNode")
    assert transform.GetAttribute("MedFuse.preset") == "fast"
    assert transform.GetNodeReferenceID("fixedVolume") == fixed.GetID()
    assert transform.GetNodeReferenceID("movingVolume") == moving.GetID()

    # Slicer's resampling of the moving volume through the grid transform = the backend's warped image
    resampled = _slicer_resample(moving, fixed, transform)
    warped = slicer.util.arrayFromVolume(outputs.volume)
    np.testing.assert_allclose(_matrix(outputs.volume), _matrix(fixed), atol=1e-4)
    brain = sitk.GetArrayViewFromImage(pair["fixed_aseg"]) > 0
    difference = np.abs(resampled.astype(np.float64) - warped)
    value_range = float(warped.max() - warped.min())
    # measured: 6e-4 of a 152 range (float32 rounding); linear interpolation of field and image on both sides
    assert difference[brain].max() < 1e-4 * value_range, (difference[brain].max(), value_range)
    assert difference.mean() < 1e-5 * value_range
    assert np.abs(warped - moving_voxels).max() > 0.05 * value_range  # the transform does move the image

    # the segments: same names, colours and terminology, on the fixed grid, closer to the fixed anatomy
    registered = outputs.segmentation
    assert registered.GetName() == "moving structures registered"
    names = [
        registered.GetSegmentation().GetNthSegment(i).GetName()
        for i in range(registered.GetSegmentation().GetNumberOfSegments())
    ]
    assert names == [label.name for label in STRUCTURES]
    for label in STRUCTURES:
        segment_id = registered.GetSegmentation().GetSegmentIdBySegmentName(label.name)
        segment = registered.GetSegmentation().GetSegment(segment_id)
        assert segment.GetColor() == pytest.approx([c / 255 for c in label.color], abs=1 / 255)
    tag = slicer.vtkSegment.GetTerminologyEntryTagName()
    entry = vtk.reference("")
    ventricle = registered.GetSegmentation().GetSegmentIdBySegmentName("Left lateral ventricle")
    assert registered.GetSegmentation().GetSegment(ventricle).GetTag(tag, entry)
    assert str(entry) == VENTRICLE_TERMINOLOGY
    fixed_aseg = sitk.GetArrayViewFromImage(pair["fixed_aseg"])
    moving_aseg = sitk.GetArrayViewFromImage(pair["moving_aseg"])
    masks = _segment_masks(registered, fixed)
    before = np.mean([_dice(fixed_aseg == label.value, moving_aseg == label.value) for label in STRUCTURES])
    after = np.mean([_dice(fixed_aseg == label.value, masks[label.name]) for label in STRUCTURES])
    assert after > before + 0.15, (before, after)  # measured: 0.45 -> 0.78

    # the inputs are untouched: voxels, geometry, no parent transform, the same segments
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(moving), moving_voxels)
    np.testing.assert_allclose(_matrix(moving), moving_matrix)
    assert moving.GetParentTransformNode() is None and segmentation.GetParentTransformNode() is None
    assert all(np.array_equal(m, source_masks[n]) for n, m in _segment_masks(segmentation, moving).items())
    created = {slicer_scene.GetNodeByID(i).GetClassName() for i in _node_ids(slicer_scene) - before_ids}
    assert created <= {
        "vtkMRMLScalarVolumeNode",
        "vtkMRMLScalarVolumeDisplayNode",
        "vtkMRMLSegmentationNode",
        "vtkMRMLSegmentationDisplayNode",
    }, created


def test_cancel_adds_nothing(slicer_scene, nodes, logic: RegistrationLogic) -> None:
    before = _node_ids(slicer_scene)
    job = logic.startJob(nodes["fixed"], nodes["moving"], resampledVolume=False, device="cpu")
    assert job.output_roles == ["displacement"]  # no resampled volume asked for, no segmentation given
    job.cancel()  # before the backend got past its imports
    job.wait(60)
    temp_dir = job.temp_dir
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finishJob(job)
    assert _node_ids(slicer_scene) == before
    assert temp_dir is not None and not temp_dir.exists()


def test_backend_rejection_reaches_the_user_and_adds_nothing(slicer_scene, nodes, logic, pair) -> None:
    far = sitk.Image(pair["moving"])
    far.SetOrigin(tuple(np.add(far.GetOrigin(), (400.0, 0.0, 0.0))))
    far_node = image_to_volume_node(far, slicer_scene, "far away")
    before = _node_ids(slicer_scene)
    job = logic.startJob(nodes["fixed"], far_node, overrides={"initialization": "none"}, device="cpu")
    job.wait(120)
    with pytest.raises(RuntimeError, match="do not overlap"):
        logic.finishJob(job)
    assert _node_ids(slicer_scene) == before

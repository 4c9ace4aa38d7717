"""MedFuse Super-Resolution module logic on a headless MRML scene, through the real backend process.

The input is a real thick-slice MRI (pyradiomics brain1: 0.78 mm pixels, 6.5 mm slices), cropped so
each backend run takes a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import vtk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseSuperResolution"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseLib.mrml_bridge import image_to_volume_node  # noqa: E402  (needs slicer-core, checked above)
from MedFuseSuperResolutionLib import SuperResolutionLogic, methodChoices, methodNote  # noqa: E402

pytestmark = pytest.mark.slicer

THICK_MRI = "brain_registration/pyradiomics_brain1_image.nrrd"  # 256 x 256 x 25, 0.78 x 0.78 x 6.5 mm
ISOTROPIC_MRI = "sr/colin27_ch2_1mm.nii.gz"


# --- helpers --------------------------------------------------------------------------------------
def _load(scene, shared_data: Path, relative: str, region: tuple[slice, slice, slice], name: str):
    """A cropped real scan as a volume node, placed under a patient/study in subject hierarchy."""
    image = sitk.ReadImage(str(shared_data / relative))[region]
    node = image_to_volume_node(image, scene, name)
    sh = scene.GetSubjectHierarchyNode()
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient")
    study = sh.CreateStudyItem(patient, "Study")
    item = sh.GetItemByDataNode(node)
    if item == sh.GetInvalidItemID():
        sh.CreateItem(study, node)
    else:
        sh.SetItemParent(item, study)
    node.GetDisplayNode().AutoWindowLevelOff()
    node.GetDisplayNode().SetWindowLevel(321.0, 123.0)
    return node


@pytest.fixture
def thick_mri(slicer_scene, shared_data: Path):
    """64 x 64 x 12 voxels of the brain MRI, 6.5 mm slices."""
    return _load(slicer_scene, shared_data, THICK_MRI, (slice(96, 160), slice(96, 160), slice(6, 18)), "brain1 thick")


def _ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _first_and_last_voxel_centres(node) -> np.ndarray:
    last = np.array(node.GetImageData().GetDimensions()) - 1
    return (_ijk_to_ras(node) @ np.array([[0, 0, 0, 1], [*last, 1]], dtype=float).T)[:3].T


def _study_of(node):
    sh = node.GetScene().GetSubjectHierarchyNode()
    return sh.GetItemParent(sh.GetItemByDataNode(node))


def _volume_ids(scene) -> set[str]:
    return {node.GetID() for node in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode", scene)}


class RefusingRunner:
    """A process runner that fails the test if anything tries to start the backend."""

    def start(self, command, *, env=None, cwd=None):
        raise AssertionError(f"the backend should not have been started: {command}")


# --- geometry and validation ----------------------------------------------------------------------
def test_method_choices_come_from_the_task_declaration() -> None:
    assert methodChoices() == list(SuperResolutionLogic.spec().parameter("method").choices)
    assert all(methodNote(method) for method in methodChoices())


def test_detect_slice_geometry_of_a_thick_slice_mri(thick_mri) -> None:
    geometry = SuperResolutionLogic().detectSliceGeometry(thick_mri)
    assert geometry["sliceAxis"] == 2
    assert geometry["orientation"] == "axial"
    assert geometry["direction"] == "inferior-superior"
    assert geometry["sliceSpacing"] == pytest.approx(6.5)
    assert geometry["inPlaneSpacing"] == pytest.approx(0.78125)
    assert (geometry["thickness"], geometry["thicknessSource"]) == (pytest.approx(6.5), "spacing")
    assert geometry["isotropic"] is False
    assert geometry["dimensions"] == (64, 64, 12)
    assert "axial slices every 6.5 mm" in SuperResolutionLogic.describeSliceGeometry(geometry)
    assert "no overlap" in SuperResolutionLogic.describeSliceGeometry(geometry)


def test_defaults_are_sr4zct_fast_and_network_settings_reach_the_backend(thick_mri) -> None:
    logic = SuperResolutionLogic(runner=RefusingRunner())
    params = logic.checkedParameters(thick_mri)
    assert (params["method"], params["quality"], params["epochs"], params["seed"]) == ("sr4zct", "fast", 0, 0)
    params = logic.checkedParameters(thick_mri, quality="faithful", epochs=7, seed=11)
    assert (params["quality"], params["epochs"], params["seed"]) == ("faithful", 7, 11)
    with pytest.raises(ValueError, match="quality"):
        logic.checkedParameters(thick_mri, quality="best")


def test_sr4zct_checks_see_the_real_volume_size(slicer_scene, shared_data: Path) -> None:
    """The checks run on the node's grid (no voxel copy): a 64-pixel slice passes, an 8-pixel strip is refused."""
    logic = SuperResolutionLogic(runner=RefusingRunner())
    strip = _load(slicer_scene, shared_data, THICK_MRI, (slice(96, 104), slice(96, 160), slice(6, 18)), "strip")
    with pytest.raises(ValueError, match=r"SR4ZCT needs slices of more than 10 pixels.*has 8.*method=linear"):
        logic.checkedParameters(strip)
    assert logic.checkedParameters(strip, method="linear")["method"] == "linear"
    wide = _load(slicer_scene, shared_data, THICK_MRI, (slice(64, 192), slice(64, 192), slice(6, 18)), "wide")
    assert logic.checkedParameters(wide)["method"] == "sr4zct"


def test_overlap_and_gaps_are_described(thick_mri) -> None:
    logic = SuperResolutionLogic()
    overlapping = logic.detectSliceGeometry(thick_mri, sliceThickness=9.75)
    assert overlapping["overlap"] == pytest.approx(3.25)
    assert "9.75 mm thick (as entered), overlap 3.25 mm" in SuperResolutionLogic.describeSliceGeometry(overlapping)
    assert "gaps of 1.5 mm" in SuperResolutionLogic.describeSliceGeometry(logic.detectSliceGeometry(thick_mri, 5.0))


def test_recorded_slice_thickness_is_detected_and_sent_to_the_backend(thick_mri) -> None:
    thick_mri.SetAttribute("DICOM.SliceThickness", "5.0")
    logic = SuperResolutionLogic()
    geometry = logic.detectSliceGeometry(thick_mri)
    assert (geometry["thickness"], geometry["thicknessSource"]) == (pytest.approx(5.0), "dicom")
    assert geometry["overlap"] == pytest.approx(-1.5)  # gaps between slices
    assert logic.checkedParameters(thick_mri)["slice_thickness"] == pytest.approx(5.0)
    assert logic.detectSliceGeometry(thick_mri, sliceThickness=7.0)["thicknessSource"] == "user"


def test_slice_thickness_from_the_dicom_database(thick_mri) -> None:
    class FakeDicomDatabase:
        def fileForInstance(self, uid: str) -> str:
            return f"/dicom/{uid}.dcm"

        def fileValue(self, fileName: str, tag: str) -> str:
            assert (fileName, tag) == ("/dicom/1.2.3.dcm", "0018,0050")
            return "3.0"

    thick_mri.SetAttribute("DICOM.instanceUIDs", "1.2.3 1.2.4")
    assert SuperResolutionLogic(dicomDatabase=FakeDicomDatabase()).recordedSliceThickness(thick_mri) == 3.0


def test_already_isotropic_volume_says_there_is_nothing_to_do(slicer_scene, shared_data: Path) -> None:
    iso = _load(slicer_scene, shared_data, ISOTROPIC_MRI, (slice(60, 92), slice(80, 112), slice(60, 76)), "iso")
    logic = SuperResolutionLogic(runner=RefusingRunner())
    assert logic.detectSliceGeometry(iso)["isotropic"] is True
    with pytest.raises(ValueError, match="already isotropic.*nothing to super-resolve"):
        logic.startJob(iso)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("no input", "Select an input volume"),
        ("single slice", "is a single slice"),
        ("output is input", "Choose another output volume"),
        ("coarser target", "not finer than the slice spacing"),
        ("unknown method", "must be one of"),
    ],
)
def test_invalid_requests_give_one_sentence(slicer_scene, thick_mri, case: str, fragment: str) -> None:
    logic = SuperResolutionLogic(runner=RefusingRunner())
    single = slicer.util.addVolumeFromArray(np.zeros((1, 8, 8), dtype=np.int16), name="single")
    calls = {
        "no input": lambda: logic.startJob(None),
        "single slice": lambda: logic.startJob(single),
        "output is input": lambda: logic.startJob(thick_mri, thick_mri),
        "coarser target": lambda: logic.startJob(thick_mri, targetSpacing=8.0),
        "unknown method": lambda: logic.startJob(thick_mri, method="magic"),
    }
    with pytest.raises(ValueError, match=fragment) as raised:
        calls[case]()
    assert "\n" not in str(raised.value)


# --- the real backend -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [{"method": "bspline"}, {"method": "sr4zct", "quality": "fast", "epochs": 1, "seed": 1}],
    ids=["bspline", "sr4zct"],
)
def test_process_gives_isotropic_slices_over_the_same_extent(slicer_scene, thick_mri, options, monkeypatch) -> None:
    """The issue's headless test: the output node covers the input's extent with the new spacing (SR4ZCT: 1 epoch)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the backend process inherits it: no thread oversubscription on CI
    before = slicer.util.arrayFromVolume(thick_mri).copy()
    input_matrix = _ijk_to_ras(thick_mri)
    study = _study_of(thick_mri)

    output = SuperResolutionLogic().process(thick_mri, device="cpu", **options)

    assert output is not thick_mri and output.IsA("vtkMRMLScalarVolumeNode")
    assert output.GetName() == "brain1 thick super-resolved"
    dims = output.GetImageData().GetDimensions()
    assert dims[:2] == (64, 64)
    assert dims[2] == round(11 * 6.5 / 0.78125) + 1  # slice centres span the same 71.5 mm
    spacing = output.GetSpacing()
    assert spacing[:2] == pytest.approx((0.78125, 0.78125))
    assert spacing[2] == pytest.approx(11 * 6.5 / (dims[2] - 1))
    np.testing.assert_allclose(
        _first_and_last_voxel_centres(output), _first_and_last_voxel_centres(thick_mri), atol=1e-3
    )
    out_dirs, in_dirs = _ijk_to_ras(output)[:3, :3], input_matrix[:3, :3]
    np.testing.assert_allclose(
        out_dirs / np.linalg.norm(out_dirs, axis=0), in_dirs / np.linalg.norm(in_dirs, axis=0), atol=1e-6
    )

    voxels = slicer.util.arrayFromVolume(output)
    assert before.min() <= voxels.min() and voxels.max() <= before.max()  # clipped to the input range
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(thick_mri), before)  # input untouched
    np.testing.assert_allclose(_ijk_to_ras(thick_mri), input_matrix)
    assert _study_of(output) == study
    display = output.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == (pytest.approx(321.0), pytest.approx(123.0))
    assert output.GetAttribute("MedFuse.method") == options["method"]
    assert output.GetImageData().GetScalarType() == thick_mri.GetImageData().GetScalarType()
    assert output.GetAttribute("MedFuse.sourceVolumeID") == thick_mri.GetID()


def test_integer_factor_keeps_every_measured_slice(slicer_scene, thick_mri) -> None:
    existing = slicer_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "my result")

    output = SuperResolutionLogic().process(thick_mri, existing, method="linear", factor=4.0)

    assert output is existing and output.GetName() == "my result"
    assert output.GetImageData().GetDimensions() == (64, 64, 45)  # (12 - 1) * 4 + 1
    assert output.GetSpacing()[2] == pytest.approx(6.5 / 4)
    fine, thick = slicer.util.arrayFromVolume(output), slicer.util.arrayFromVolume(thick_mri)
    np.testing.assert_array_equal(fine[::4], thick)  # slice k of the input is slice 4k of the output
    middle = (thick[:-1].astype(float) + thick[1:]) / 2
    np.testing.assert_allclose(fine[2::4], middle, atol=0.51)  # halfway slices: the mean, rounded


def test_a_run_leaves_the_layout_and_the_inputs_display_alone(slicer_scene, thick_mri) -> None:
    """The panel switches the layout only when asked (compareAfterRun); the Logic never touches it or the input."""
    layout = slicer_scene.AddNewNodeByClass("vtkMRMLLayoutNode")
    layout.SetViewArrangement(layout.SlicerLayoutFourUpView)
    thick_mri.CreateDefaultDisplayNodes()
    display = thick_mri.GetDisplayNode()
    before = (layout.GetViewArrangement(), layout.GetMTime(), display.GetID(), display.GetMTime(), thick_mri.GetMTime())

    run = SuperResolutionLogic().processAsync(thick_mri, method="linear", factor=2.0)
    fine = run.wait(120)

    assert fine is not thick_mri and run.succeeded
    after = (layout.GetViewArrangement(), layout.GetMTime(), display.GetID(), display.GetMTime(), thick_mri.GetMTime())
    assert after == before


def test_cancel_leaves_the_scene_unchanged(slicer_scene, thick_mri) -> None:
    before = slicer.util.arrayFromVolume(thick_mri).copy()
    volumes = _volume_ids(slicer_scene)
    logic = SuperResolutionLogic()

    job = logic.startJob(thick_mri, method="sinc")
    job.cancel()  # before the backend got past its imports
    deadline = time.monotonic() + 60
    while not job.done:
        assert time.monotonic() < deadline, "the cancelled backend did not stop"
        job.poll()
        time.sleep(0.05)
    temp_dir = job.temp_dir

    assert not job.succeeded
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finishJob(job)
    assert _volume_ids(slicer_scene) == volumes
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(thick_mri), before)
    assert temp_dir is not None and not temp_dir.exists()

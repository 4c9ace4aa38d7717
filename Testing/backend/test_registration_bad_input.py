"""Task ``registration``: its ITK .h5 transform output, and its answers to bad or awkward input.

The pair is the real T1 (vxm test scan) at 4 mm (40 x 48 x 56 voxels) and a copy warped by a known
smooth B-spline field, so a run takes a few seconds. Every failing case must give one sentence
naming the fix and leave nothing in the output folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.geometry import resample_to_spacing
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.tasks.registration import RegistrationTask

from .registration_data import TINY, warped_pair

pytestmark = pytest.mark.usefixtures("small_torch_work")

#: Few iterations: these tests check outputs and messages, not accuracy (test_registration_task does that).
QUICK = {"linear_iterations": "20,10", "iterations": "20,10,5"}


@pytest.fixture(scope="module")
def pair(shared_data: Path) -> dict[str, sitk.Image]:
    return warped_pair(shared_data)


class RecordingProgress(Progress):
    """Keeps every event, so a test can read the messages a user would see."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict] = []

    def emit(self, event: dict) -> None:
        self.events.append(event)

    def messages(self) -> list[str]:
        return [str(event.get("message", "")) for event in self.events]


def _assert_nothing_written(folder: Path) -> None:
    assert not any(folder.iterdir()), f"files left behind: {sorted(p.name for p in folder.iterdir())}"


# --- the transform as .nii.gz and .h5 --------------------------------------------------------------
def test_h5_and_nifti_transforms_move_points_identically(pair, tmp_path):
    field_path, h5_path = tmp_path / "field.nii.gz", tmp_path / "field.h5"
    result = run_task(
        RegistrationTask(),
        {"fixed": pair["fixed"], "moving": pair["moving"]},
        {"displacement": field_path},
        {**QUICK, "transform_file": str(h5_path)},
        device="cpu",
    )
    assert result.report["transform_file"] == str(h5_path)
    from_nifti = sitk.DisplacementFieldTransform(sitk.ReadImage(str(field_path), sitk.sitkVectorFloat64))
    from_h5 = sitk.ReadTransform(str(h5_path))
    assert "DisplacementFieldTransform" in from_h5.GetName()
    # points spread over the fixed image (continuous indices, so between voxels too)
    size = np.asarray(pair["fixed"].GetSize()) - 1
    indices = np.random.default_rng(1).uniform(0.0, 1.0, (300, 3)) * size
    points = [pair["fixed"].TransformContinuousIndexToPhysicalPoint(index.tolist()) for index in indices]
    moved_nifti = np.array([from_nifti.TransformPoint(p) for p in points])
    moved_h5 = np.array([from_h5.TransformPoint(p) for p in points])
    np.testing.assert_allclose(moved_h5, moved_nifti, atol=1e-6)
    assert np.abs(moved_nifti - np.asarray(points)).max() > 0.5  # the transform does move points


def test_transform_file_needs_h5_and_an_existing_folder(pair, tmp_path):
    inputs = {"fixed": pair["fixed"], "moving": pair["moving"]}
    with pytest.raises(UsageError, match=r"must end in \.h5"):
        run_task(RegistrationTask(), inputs, {"displacement": tmp_path / "f.nii.gz"}, {"transform_file": "t.tfm"})
    with pytest.raises(UsageError, match="does not exist"):
        run_task(RegistrationTask(), inputs, params={"transform_file": str(tmp_path / "missing" / "t.h5")})
    _assert_nothing_written(tmp_path)


def test_warped_labels_without_moving_labels_is_a_usage_error():
    with pytest.raises(UsageError, match="'warped_labels' needs the input 'moving_labels'"):
        RegistrationTask.check_outputs(["displacement", "warped_labels"], ["fixed", "moving"])
    RegistrationTask.check_outputs(["displacement", "warped_labels"], ["fixed", "moving", "moving_labels"])
    RegistrationTask.check_outputs(["displacement", "warped"], ["fixed", "moving"])


# --- bad input -------------------------------------------------------------------------------------
def test_different_dimensionality_is_refused(pair, tmp_path):
    flat = sitk.GetImageFromArray(np.random.default_rng(0).random((48, 40)).astype(np.float32))
    with pytest.raises(InputError, match="3D") as raised:
        run_task(RegistrationTask(), {"fixed": pair["fixed"], "moving": flat}, {"displacement": tmp_path / "f.nii.gz"})
    assert "\n" not in raised.value.message
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("role", ["fixed_mask", "moving_mask"])
def test_empty_masks_are_refused(pair, tmp_path, role):
    image = pair["fixed"] if role == "fixed_mask" else pair["moving"]
    empty = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(image)
    inputs = {"fixed": pair["fixed"], "moving": pair["moving"], role: empty}
    with pytest.raises(InputError, match="empty"):
        run_task(RegistrationTask(), inputs, {"displacement": tmp_path / "f.nii.gz"}, QUICK, device="cpu")
    _assert_nothing_written(tmp_path)


def test_non_overlapping_fields_of_view(pair, tmp_path):
    far = sitk.Image(pair["moving"])
    far.SetOrigin(tuple(np.add(far.GetOrigin(), (400.0, 0.0, 0.0))))
    params = {**QUICK, "initialization": "none"}
    with pytest.raises(InputError, match="do not overlap"):
        run_task(
            RegistrationTask(), {"fixed": pair["fixed"], "moving": far}, {"displacement": tmp_path / "f.nii.gz"}, params
        )
    # a thin slab of the moving head cannot cover the fixed head, wherever it is placed
    slab = pair["moving"][:, :, 27:29]
    with pytest.raises(InputError, match="lies inside the moving image"):
        run_task(
            RegistrationTask(), {"fixed": pair["fixed"], "moving": slab}, {"displacement": tmp_path / "f.nii.gz"}, TINY
        )
    _assert_nothing_written(tmp_path)


def test_constant_image_is_refused(pair):
    constant = sitk.Image(pair["moving"].GetSize(), sitk.sitkFloat32) + 7.0
    constant.CopyInformation(pair["moving"])
    with pytest.raises(InputError, match="same value"):
        run_task(RegistrationTask(), {"fixed": pair["fixed"], "moving": constant}, params=TINY)


def test_a_coarser_moving_image_is_handled(pair):
    coarse = resample_to_spacing(pair["moving"], (8.0, 8.0, 8.0))  # 2x coarser on every axis
    result = run_task(RegistrationTask(), {"fixed": pair["fixed"], "moving": coarse}, params=TINY, device="cpu")
    assert result.images["warped"].GetSize() == pair["fixed"].GetSize()
    assert result.report["overlap_after_linear"] > 0.9


def test_wildly_anisotropic_moving_spacing_is_handled(pair):
    thick = resample_to_spacing(pair["moving"], (1.0, 12.0, 1.0))  # fine in-plane, 12 mm slices
    result = run_task(RegistrationTask(), {"fixed": pair["fixed"], "moving": thick}, params=TINY, device="cpu")
    assert result.images["warped"].GetSize() == pair["fixed"].GetSize()


def test_too_many_voxels_register_on_a_coarser_grid_and_say_so(pair):
    fixed = resample_to_spacing(pair["fixed"], 2.0)  # 80 x 96 x 112 = 860 160 voxels
    budget = 100_000
    progress = RecordingProgress()
    result = run_task(
        RegistrationTask(),
        {"fixed": fixed, "moving": pair["moving"]},
        params={**TINY, "max_voxels": budget},
        device="cpu",
        progress=progress,
    )
    working = result.report["working_grid"]["size"]
    assert int(np.prod(working)) <= budget * 1.05  # rounding of the grid size
    assert result.images["displacement"].GetSize() == fixed.GetSize()  # outputs stay on the full grid
    (warning,) = result.report["warnings"]
    assert f"max_voxels={budget}" in warning and "coarser" in warning and "full fixed grid" in warning
    assert any("coarser" in message and "max_voxels" in message for message in progress.messages())


def test_run_task_refuses_labels_output_without_labels_and_writes_h5_transforms(pair, tmp_path):
    with pytest.raises(UsageError, match="needs the input 'moving_labels'"):
        run_task(
            RegistrationTask(),
            {"fixed": pair["fixed"], "moving": pair["moving"]},
            {"warped_labels": tmp_path / "l.nii.gz"},
        )
    result = run_task(
        RegistrationTask(),
        {"fixed": pair["fixed"], "moving": pair["moving"]},
        {"displacement": tmp_path / "field.h5"},
        {**TINY, "deformable": False},
        device="cpu",
    )
    transform = sitk.ReadTransform(str(tmp_path / "field.h5"))
    assert "DisplacementFieldTransform" in transform.GetName()
    field = sitk.DisplacementFieldTransform(sitk.Cast(result.images["displacement"], sitk.sitkVectorFloat64))
    point = pair["fixed"].TransformContinuousIndexToPhysicalPoint((10.5, 20.2, 30.7))
    np.testing.assert_allclose(transform.TransformPoint(point), field.TransformPoint(point), atol=1e-9)

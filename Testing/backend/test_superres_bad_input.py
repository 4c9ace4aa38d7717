"""Issue §5: inputs super-resolution cannot take as they are get handled or one clear sentence.

Already isotropic volumes, 2D images and single slices are refused with the fix named; DICOM series
with non-uniform slice spacing or gantry tilt are regularised by the reader (with a logged warning)
and then super-resolved correctly: the intensities of the synthetic series are a linear function of
the patient position, so every output voxel can be checked against it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.superres.slice_geometry import VolumeGrid, detect_slice_geometry

from .test_dicom import COLUMNS, PIXEL_SPACING, ROWS, assert_values_match_field, oblique_frame, write_series


def _refusal(volume, **params) -> str:
    with pytest.raises(InputError) as raised:
        run_task("superres", {"volume": volume}, params=params)
    message = raised.value.message
    assert "\n" not in message and message.endswith("."), message
    return message


def _ramp(size, spacing) -> sitk.Image:
    image = sitk.GetImageFromArray(np.arange(np.prod(size[::-1]), dtype=np.float32).reshape(size[::-1]))
    image.SetSpacing(spacing)
    return image


def test_already_isotropic_says_there_is_nothing_to_do_unless_asked_for_finer_slices():
    iso = _ramp((24, 24, 12), (1.0, 1.0, 1.02))  # within the 5 % isotropy tolerance
    assert "already isotropic" in _refusal(iso)
    assert "already isotropic" in _refusal(iso, method="linear")
    finer = run_task("superres", {"volume": iso}, params={"method": "linear", "factor": 2.0})  # explicitly asked
    assert finer.images["volume"].GetSize()[2] == 23


@pytest.mark.parametrize("method", ["sr4zct", "linear"])
def test_two_d_image_and_single_slice_are_refused(method):
    assert "is 2D (size 32x32); give a 3D volume" in _refusal(_ramp((32, 32), (0.5, 0.5)), method=method)
    assert "is a single slice (size 32x32x1)" in _refusal(_ramp((32, 32, 1), (0.5, 0.5, 5.0)), method=method)
    # the same rule where the backend sees only the grid (the Slicer module's checks)
    with pytest.raises(InputError, match=r"single slice \(32 x 32 x 1 voxels\)"):
        detect_slice_geometry(VolumeGrid((32, 32, 1), (0.5, 0.5, 5.0)))


def test_thickness_must_be_positive_and_sr4zct_needs_room_for_its_slabs():
    thick = _ramp((40, 12, 6), (0.8, 0.8, 6.0))  # 9.6 mm across: less than two 6 mm slabs 6 mm apart
    with pytest.raises(UsageError, match="slice_thickness"):
        run_task("superres", {"volume": thick}, params={"slice_thickness": -1.0})
    with pytest.raises(InputError, match="Slice thickness must be positive"):
        detect_slice_geometry(thick, -1.0)
    assert "too small to simulate two 6 mm slices" in _refusal(thick, method="sr4zct")


def test_grid_checks_need_no_voxels():
    grid = VolumeGrid((512, 512, 40), (0.5, 0.5, 5.0), recorded_thickness=6.0)
    geometry = detect_slice_geometry(grid)
    assert (geometry.axis, geometry.thickness, geometry.thickness_source, geometry.overlap) == (2, 6.0, "dicom", 1.0)
    image = sitk.Image(8, 8, 3, sitk.sitkInt16)
    image.SetMetaData("0018|0050", "2.5\\2.5")  # a multi-valued tag: the first value
    assert VolumeGrid.of(image).recorded_thickness == 2.5


def test_non_uniform_dicom_series_is_regularised_then_super_resolved(tmp_path: Path, caplog):
    frame = oblique_frame()
    origin = np.array([3.0, -2.0, 10.0])
    depths = [0.0, 5.0, 10.0, 20.0, 25.0]  # 5 mm slices, the one at 15 mm missing
    write_series(tmp_path, "1.2.3.60", [origin + d * frame[:, 2] for d in depths], frame=frame)

    with caplog.at_level(logging.WARNING, logger="SlicerMedFuse"):
        result = run_task("superres", {"volume": tmp_path}, params={"method": "linear", "factor": 5.0})
    assert "non-uniform slice spacing" in caplog.text
    image, report = result.images["volume"], result.report
    assert image.GetSize() == (COLUMNS, ROWS, 26)  # 6 regular 5 mm slices -> 1 mm
    np.testing.assert_allclose(image.GetSpacing(), (*PIXEL_SPACING, 1.0), atol=1e-6)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), frame, atol=1e-6)
    assert (report["slice_thickness_mm"], report["slice_thickness_source"]) == (2.5, "dicom")
    assert report["slice_overlap_mm"] == pytest.approx(-2.5)
    assert_values_match_field(image)  # every new slice where the linear field says, also across the gap


def test_gantry_tilted_dicom_series_is_straightened_then_super_resolved(tmp_path: Path, caplog):
    spacing_z, shear = 3.0, 3.0 * np.tan(np.radians(15.0))
    write_series(tmp_path, "1.2.3.61", [(2.0, -4.0 + shear * k, 30.0 + spacing_z * k) for k in range(5)], tilt=15.0)

    with caplog.at_level(logging.WARNING, logger="SlicerMedFuse"):
        result = run_task("superres", {"volume": tmp_path}, params={"method": "linear", "factor": 3.0})
    assert "gantry tilt" in caplog.text
    image = result.images["volume"]
    np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    assert image.GetSize()[2] == 13 and image.GetSpacing()[2] == pytest.approx(1.0)
    assert_values_match_field(image, margin=(0, 4, 0))  # inside the sheared stack's cover

"""Tests of SlicerMedFuse.io.dicom on small synthetic series written with SimpleITK.

Pixel values are a known linear function of the LPS position, so a wrongly stacked slice shows
as a wrong value at a known physical point, and linear interpolation reproduces it exactly
(up to the int16 rounding of the stored values).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import ImageGeometry
from SlicerMedFuse.io import list_dicom_series, read_dicom_series, read_image

COLUMNS, ROWS = 16, 12
PIXEL_SPACING = (0.8, 0.9)  # mm along i (columns), j (rows)
SLOPE = np.array([30.0, 50.0, 70.0])  # value units per mm along L, P, S
OFFSET = 1000.0


def field(points: np.ndarray) -> np.ndarray:
    """The known intensity at LPS points (..., 3)."""
    return points @ SLOPE + OFFSET


def oblique_frame() -> np.ndarray:
    """Columns: row direction, column direction, slice normal of a slightly oblique axial series."""
    a, b = np.radians(8.0), np.radians(-5.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def write_series(
    folder: Path,
    uid: str,
    positions: Sequence[Sequence[float]],
    *,
    frame: np.ndarray | None = None,
    description: str = "Head",
    tilt: float | None = None,
) -> None:
    """Write one slice file per ImagePositionPatient, pixel values from :func:`field`."""
    frame = np.eye(3) if frame is None else frame
    row, col = frame[:, 0], frame[:, 1]
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    jj, ii = np.mgrid[0:ROWS, 0:COLUMNS]
    for k, position in enumerate(positions):
        position = np.asarray(position, dtype=np.float64)
        points = position + ii[..., None] * PIXEL_SPACING[0] * row + jj[..., None] * PIXEL_SPACING[1] * col
        slice_image = sitk.GetImageFromArray(np.round(field(points)).astype(np.int16))
        slice_image.SetSpacing(PIXEL_SPACING)
        tags = {
            "0020|000e": uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0018": f"{uid}.{k + 1}",
            "0008|103e": description,
            "0008|0060": "CT",
            "0018|0050": "2.5",
            "0020|0013": str(k + 1),
            "0020|0037": "\\".join(f"{v:.8f}" for v in (*row, *col)),
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
        }
        if tilt is not None:
            tags["0018|1120"] = f"{tilt:g}"
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{uid}-{len(positions) - k:03d}.dcm"))  # names in reverse slice order
        writer.Execute(slice_image)


def voxel_points(image: sitk.Image) -> np.ndarray:
    """LPS centre of every voxel, shape (k, j, i, 3) like the image's array."""
    size = image.GetSize()
    kk, jj, ii = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    ijk = np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1).astype(np.float64)
    return (ijk @ ImageGeometry.from_image(image).ijk_to_lps().T)[..., :3]


def assert_values_match_field(image: sitk.Image, margin: tuple[int, int, int] = (0, 0, 0)) -> None:
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    expected = field(voxel_points(image))
    mi, mj, mk = margin
    inner = (slice(mk, array.shape[0] - mk), slice(mj, array.shape[1] - mj), slice(mi, array.shape[2] - mi))
    np.testing.assert_allclose(array[inner], expected[inner], atol=0.51)


def test_single_series_is_read_with_geometry_and_thickness(tmp_path: Path) -> None:
    frame = oblique_frame()
    origin = np.array([-20.0, 5.0, 40.0])
    write_series(tmp_path, "1.2.3.1", [origin + 1.25 * k * frame[:, 2] for k in range(6)], frame=frame)

    [info] = list_dicom_series(tmp_path)
    assert (info.uid, info.description, info.modality, info.num_files, info.slice_thickness) == (
        "1.2.3.1",
        "Head",
        "CT",
        6,
        2.5,
    )
    image = read_dicom_series(tmp_path)
    assert image.GetSize() == (COLUMNS, ROWS, 6)
    np.testing.assert_allclose(image.GetSpacing(), (*PIXEL_SPACING, 1.25), atol=1e-5)
    np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-5)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), frame, atol=1e-6)
    assert image.GetMetaData("0018|0050") == "2.5"
    assert image.GetMetaData("0020|000e") == "1.2.3.1"
    assert image.GetPixelID() == sitk.sitkInt16
    assert_values_match_field(image)
    # read_image accepts the folder, and one file of the series stands for the whole series
    assert read_image(tmp_path).GetSize() == (COLUMNS, ROWS, 6)
    assert read_image(next(tmp_path.glob("*.dcm"))).GetSize() == (COLUMNS, ROWS, 6)


def test_two_series_need_a_choice(tmp_path: Path) -> None:
    write_series(tmp_path, "1.2.3.10", [(0, 0, z) for z in range(4)], description="Bone")
    write_series(tmp_path, "1.2.3.20", [(0, 0, z) for z in range(7)], description="Soft tissue")
    assert sorted(s.uid for s in list_dicom_series(tmp_path)) == ["1.2.3.10", "1.2.3.20"]

    with pytest.raises(InputError) as caught:
        read_image(tmp_path)
    message = str(caught.value)
    for part in ("1.2.3.10", "'Bone'", "(4 files)", "1.2.3.20", "'Soft tissue'", "(7 files)", "#SERIES_UID"):
        assert part in message

    assert read_image(f"{tmp_path}#1.2.3.20").GetSize() == (COLUMNS, ROWS, 7)
    assert read_image(tmp_path, series_uid="1.2.3.10").GetSize() == (COLUMNS, ROWS, 4)
    with pytest.raises(InputError, match="no DICOM series '9.9'"):
        read_image(f"{tmp_path}#9.9")


def test_non_uniform_spacing_is_regularized(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = oblique_frame()
    depths = [0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0]  # slice 4 is missing
    origin = np.array([3.0, -2.0, 10.0])
    write_series(tmp_path, "1.2.3.30", [origin + d * frame[:, 2] for d in depths], frame=frame)

    with pytest.raises(InputError, match=r"non-uniform slice spacing \(1 to 2 mm.*regularize=True"):
        read_dicom_series(tmp_path, regularize=False)

    with caplog.at_level(logging.WARNING, logger="SlicerMedFuse"):
        image = read_dicom_series(tmp_path)
    assert "non-uniform slice spacing" in caplog.text and "8 slices" in caplog.text
    assert image.GetSize() == (COLUMNS, ROWS, 8)
    np.testing.assert_allclose(image.GetSpacing(), (*PIXEL_SPACING, 1.0), atol=1e-6)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), frame, atol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-5)
    assert image.GetMetaData("0018|0050") == "2.5"
    # the interpolated slice 4 mm along the normal holds the field's value at its physical points
    point = origin + 4.0 * frame[:, 2] + 5 * PIXEL_SPACING[0] * frame[:, 0] + 7 * PIXEL_SPACING[1] * frame[:, 1]
    index = image.TransformPhysicalPointToIndex(tuple(point))
    assert index == (5, 7, 4)
    assert abs(image[index] - field(point)) < 0.51
    assert_values_match_field(image)


def test_gantry_tilt_is_regularized(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    angle = 20.0
    spacing_z = 1.5
    shear = spacing_z * np.tan(np.radians(angle))  # 0.55 mm sideways per slice, along the column direction
    positions = [(2.0, -4.0 + shear * k, 30.0 + spacing_z * k) for k in range(6)]
    write_series(tmp_path, "1.2.3.40", positions, tilt=angle)

    with pytest.raises(InputError, match="gantry tilt of about 20 degrees"):
        read_dicom_series(tmp_path, regularize=False)

    with caplog.at_level(logging.WARNING, logger="SlicerMedFuse"):
        image = read_image(tmp_path)
    assert "gantry tilt" in caplog.text
    np.testing.assert_allclose(image.GetDirection(), np.eye(3).ravel(), atol=1e-9)
    np.testing.assert_allclose(image.GetSpacing(), (*PIXEL_SPACING, spacing_z), atol=1e-6)
    assert image.GetSize() == (COLUMNS, ROWS + 3, 6)  # widened by the 2.75 mm total shear
    np.testing.assert_allclose(image.GetOrigin(), positions[0], atol=1e-5)
    # A point on the last slice, far from the first slice's rows: a mis-stacked read would be off by 2.75 mm * 50.
    point = np.array(positions[5]) + (4 * PIXEL_SPACING[0], 6 * PIXEL_SPACING[1], 0)
    continuous = image.TransformPhysicalPointToContinuousIndex(tuple(point))
    index = tuple(int(round(c)) for c in continuous)
    centre = np.array(image.TransformIndexToPhysicalPoint(index))
    assert abs(image[index] - field(centre)) < 0.51
    # every voxel covered by the acquired slices (3 rows of margin for the shear) matches the field
    assert_values_match_field(image, margin=(0, 4, 0))


def test_gantry_tilt_tag_alone_with_straight_slices_needs_no_correction(tmp_path: Path) -> None:
    frame = oblique_frame()  # scanners that store a tilted IOP with positions along its normal
    write_series(tmp_path, "1.2.3.45", [k * 2.0 * frame[:, 2] for k in range(4)], frame=frame, tilt=12.0)
    image = read_dicom_series(tmp_path, regularize=False)
    assert image.GetPixelID() == sitk.sitkInt16
    assert_values_match_field(image)


def test_several_volumes_in_one_series_are_refused(tmp_path: Path) -> None:
    write_series(tmp_path, "1.2.3.50", [(0, 0, z) for z in (0, 1, 2, 0, 1, 2)])
    with pytest.raises(InputError, match="several volumes"):
        read_dicom_series(tmp_path)


def test_not_a_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        read_dicom_series(tmp_path / "missing")

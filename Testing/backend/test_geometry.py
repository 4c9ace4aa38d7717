"""Tests of SlicerMedFuse.geometry: grids, grid checks, resampling and axis orientation."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import (
    ImageGeometry,
    check_same_grid,
    from_canonical,
    ijk_to_ras_matrix,
    lps_to_ras_points,
    orientation_code,
    physical_overlap,
    resample_to_reference,
    resample_to_spacing,
    same_grid,
    to_canonical,
)

LIA = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, -1.0, 0]])  # columns: i -> L, j -> I, k -> A (LPS)


def _rotation(angle_deg: float, axis: tuple[float, float, float]) -> np.ndarray:
    sitk_rotation = sitk.VersorTransform(axis, np.radians(angle_deg))
    return np.asarray(sitk_rotation.GetMatrix()).reshape(3, 3)


def make_image(
    size=(9, 8, 7), spacing=(0.7, 1.1, 2.3), origin=(-10.5, 20.25, 3.0), direction=LIA, array=None
) -> sitk.Image:
    if array is None:
        array = np.random.default_rng(0).normal(size=tuple(reversed(size))).astype(np.float32)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(tuple(np.asarray(direction, dtype=np.float64).ravel()))
    return image


def oblique_lia() -> np.ndarray:
    return _rotation(12.0, (0.3, -0.5, 0.8)) @ LIA


def test_geometry_round_trip_and_matrix_match_itk() -> None:
    image = make_image(direction=oblique_lia())
    geometry = ImageGeometry.from_image(image)
    copy = geometry.apply_to(sitk.Image(image.GetSize(), sitk.sitkUInt8))
    assert ImageGeometry.from_image(copy) == geometry
    with pytest.raises(ValueError, match="size"):
        geometry.apply_to(sitk.Image((2, 2, 2), sitk.sitkUInt8))

    matrix = geometry.ijk_to_lps()
    for index in [(0, 0, 0), (3, 5, 6), (8, 7, 0)]:
        lps = matrix @ np.array([*index, 1.0])
        np.testing.assert_allclose(lps[:3], image.TransformIndexToPhysicalPoint(index), atol=1e-9)
        # RAS: the coordinates module's matrix agrees with flipping the ITK point
        ras = ijk_to_ras_matrix(geometry.spacing, geometry.origin, geometry.direction) @ np.array([*index, 1.0])
        np.testing.assert_allclose(ras[:3], lps_to_ras_points(image.TransformIndexToPhysicalPoint(index)), atol=1e-9)


def test_corners_and_bounds_cover_whole_voxels() -> None:
    geometry = ImageGeometry((2, 3, 4), (1.0, 2.0, 0.5), (10.0, 0.0, -1.0), tuple(np.eye(3).ravel()))
    assert geometry.corners_lps().shape == (8, 3)
    np.testing.assert_allclose(geometry.bounds_lps(), [[9.5, -1.0, -1.25], [11.5, 5.0, 0.75]])
    with pytest.raises(ValueError, match="spacing"):
        ImageGeometry((2, 2, 2), (1.0, 0.0, 1.0), (0, 0, 0), tuple(np.eye(3).ravel()))


def test_same_grid_and_check_same_grid_name_the_role() -> None:
    reference = make_image()
    assert same_grid(reference, make_image())
    assert same_grid(reference, make_image(origin=(-10.5 + 1e-5, 20.25, 3.0)))  # within 1e-4 voxel
    moved = make_image(spacing=(0.7, 1.1, 2.5))
    assert not same_grid(reference, moved)

    check_same_grid({"ct": reference, "mask": make_image()}, "ct")
    with pytest.raises(InputError, match=r"Input 'pet' .* of 'ct' \(spacing .*resample_to_reference"):
        check_same_grid({"ct": reference, "mask": make_image(), "pet": moved}, "ct")
    with pytest.raises(InputError, match=r"size 9x8x6 vs 9x8x7"):
        check_same_grid({"ct": reference, "t2": make_image(size=(9, 8, 6))}, "ct")
    with pytest.raises(InputError, match="direction"):
        check_same_grid({"ct": reference, "t2": make_image(direction=oblique_lia())}, "ct")
    with pytest.raises(KeyError):
        check_same_grid({"ct": reference}, "t1")


def test_resample_onto_itself_is_identity() -> None:
    image = make_image(direction=oblique_lia())
    for interpolation in ("linear", "nearest", "bspline", "sinc"):
        out = resample_to_reference(image, image, interpolation=interpolation)
        assert same_grid(out, image)
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(out), sitk.GetArrayViewFromImage(image))


def test_linear_resampling_of_a_linear_ramp_is_exact_inside() -> None:
    slope = np.array([2.0, -3.0, 0.5])
    grid = ImageGeometry((30, 28, 20), (1.0, 1.2, 1.5), (0.0, 0.0, 0.0), tuple(oblique_lia().ravel()))
    source = grid.apply_to(sitk.GetImageFromArray(_voxel_points(grid) @ slope + 7.0))  # float64 ramp
    # a rotated, finer grid around the source's centre, well inside it
    centre = ImageGeometry.from_image(source).bounds_lps().mean(axis=0)
    direction = _rotation(25.0, (1.0, 1.0, 0.0))
    target = ImageGeometry(
        (12, 12, 12), (0.6, 0.6, 0.6), tuple(centre - direction @ np.full(3, 3.3)), tuple(direction.ravel())
    )
    out = resample_to_reference(source, target)
    assert out.GetPixelID() == sitk.sitkFloat32 and ImageGeometry.from_image(out) == target
    expected = _voxel_points(out) @ slope + 7.0
    np.testing.assert_allclose(sitk.GetArrayViewFromImage(out), expected, atol=2e-4)


def _voxel_points(grid: sitk.Image | ImageGeometry) -> np.ndarray:
    """LPS centres of all voxels, shape (k, j, i, 3) like the image's array."""
    geometry = grid if isinstance(grid, ImageGeometry) else ImageGeometry.from_image(grid)
    kk, jj, ii = np.meshgrid(*(np.arange(n) for n in reversed(geometry.size)), indexing="ij")
    ijk = np.stack([ii, jj, kk, np.ones_like(ii)], axis=-1).astype(np.float64)
    return (ijk @ geometry.ijk_to_lps().T)[..., :3]


def test_label_resampling_keeps_labels_and_pixel_type() -> None:
    labels = np.zeros((16, 16, 16), dtype=np.uint8)
    labels[3:9, 4:12, 2:10] = 3
    labels[8:14, 6:10, 8:15] = 7
    image = make_image(size=(16, 16, 16), spacing=(1.0, 1.0, 1.0), origin=(0, 0, 0), direction=np.eye(3), array=labels)
    target = ImageGeometry(
        (30, 30, 30), (0.55, 0.55, 0.55), (-0.5, -0.5, -0.5), tuple(_rotation(20, (0, 0, 1)).ravel())
    )
    out = resample_to_reference(image, target, interpolation="label")
    assert out.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) == {0, 3, 7}
    smooth = resample_to_reference(image, target, interpolation="linear")
    assert len(np.unique(sitk.GetArrayViewFromImage(smooth))) > 3  # what label-aware resampling avoids


def test_default_value_outside_the_image() -> None:
    array = np.full((4, 4, 4), 100.0, dtype=np.float32)
    array[0, 0, 0] = -1024.0
    image = make_image(size=(4, 4, 4), spacing=(1, 1, 1), origin=(0, 0, 0), direction=np.eye(3), array=array)
    far = ImageGeometry((2, 2, 2), (1, 1, 1), (50, 50, 50), tuple(np.eye(3).ravel()))
    assert set(np.unique(sitk.GetArrayViewFromImage(resample_to_reference(image, far)))) == {-1024.0}
    labels = sitk.Cast(image > 50, sitk.sitkUInt8) * 5
    assert set(np.unique(sitk.GetArrayViewFromImage(resample_to_reference(labels, far, interpolation="label")))) == {0}
    out = resample_to_reference(image, far, default_value=-3.0)
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) == {-3.0}


def test_resample_with_a_transform_follows_itk_convention() -> None:
    image = make_image(size=(10, 10, 10), spacing=(1, 1, 1), origin=(0, 0, 0), direction=np.eye(3))
    shift = sitk.TranslationTransform(3, (2.0, 0.0, 0.0))  # output point p samples the input at p + (2, 0, 0)
    out = resample_to_reference(image, image, transform=shift, interpolation="nearest")
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(out)[:, :, :8], sitk.GetArrayViewFromImage(image)[:, :, 2:]
    )


def test_invalid_interpolation_names_the_choices() -> None:
    image = make_image()
    with pytest.raises(ValueError, match="linear, nearest, label, bspline, sinc"):
        resample_to_reference(image, image, interpolation="cubic")
    with pytest.raises(ValueError, match="linear, nearest"):
        resample_to_spacing(image, 1.0, interpolation="area")


def test_resample_to_spacing_keeps_the_physical_extent() -> None:
    image = make_image(size=(10, 10, 10), spacing=(1.0, 1.0, 1.0), direction=oblique_lia())
    coarse = resample_to_spacing(image, 2.0)
    assert coarse.GetSize() == (5, 5, 5) and coarse.GetSpacing() == (2.0, 2.0, 2.0)
    np.testing.assert_allclose(
        ImageGeometry.from_image(coarse).bounds_lps(), ImageGeometry.from_image(image).bounds_lps(), atol=1e-9
    )
    fine = resample_to_spacing(image, (0.3, 1.0, 0.5), interpolation="nearest")
    assert fine.GetSize() == (33, 10, 20) and fine.GetPixelID() == image.GetPixelID()
    for bad in (0.0, -1.0, (1.0, 2.0)):
        with pytest.raises(ValueError, match="spacing"):
            resample_to_spacing(image, bad)


def test_physical_overlap() -> None:
    image = make_image(size=(10, 10, 10), spacing=(1, 1, 1), origin=(0, 0, 0), direction=np.eye(3))
    assert physical_overlap(image, image) == pytest.approx(1.0)
    disjoint = make_image(size=(10, 10, 10), spacing=(1, 1, 1), origin=(30, 0, 0), direction=np.eye(3))
    assert physical_overlap(image, disjoint) == 0.0
    half = make_image(size=(10, 10, 10), spacing=(1, 1, 1), origin=(5, 0, 0), direction=np.eye(3))
    assert physical_overlap(image, half) == pytest.approx(0.5)
    inside = make_image(size=(2, 2, 2), spacing=(1, 1, 1), origin=(4, 4, 4), direction=np.eye(3))
    assert physical_overlap(image, inside) == pytest.approx(1.0)


@pytest.mark.parametrize("direction", [LIA, oblique_lia()], ids=["LIA", "oblique-LIA"])
def test_canonical_round_trip_is_exact(direction: np.ndarray) -> None:
    image = make_image(direction=direction)
    assert orientation_code(image) == "LIA"
    canonical = to_canonical(image)
    assert orientation_code(canonical) == "RAS"
    # a pure permutation/flip: the same voxels at the same physical points
    assert sorted(sitk.GetArrayViewFromImage(canonical).ravel()) == sorted(sitk.GetArrayViewFromImage(image).ravel())
    index = (2, 5, 3)
    point = image.TransformIndexToPhysicalPoint(index)
    assert canonical[canonical.TransformPhysicalPointToIndex(point)] == image[index]

    back = from_canonical(canonical, image)
    assert ImageGeometry.from_image(back) == ImageGeometry.from_image(image)  # exact, not just close
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))


def test_orientation_codes_and_errors() -> None:
    assert orientation_code(make_image(direction=np.eye(3))) == "LPS"
    assert orientation_code(make_image(direction=np.diag([-1.0, -1.0, 1.0]))) == "RAS"
    assert orientation_code(to_canonical(make_image(), "lps")) == "LPS"
    for bad in ("RAX", "RRS", "RA", "LPSI"):
        with pytest.raises(ValueError, match="orientation code"):
            to_canonical(make_image(), bad)
    with pytest.raises(ValueError, match="not a reoriented copy"):
        from_canonical(to_canonical(make_image()), make_image(size=(9, 8, 6)))

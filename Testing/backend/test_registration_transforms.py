"""Dense fields: warping, composition, scaling and squaring, and the ITK export on an oblique grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.geometry import ImageGeometry
from SlicerMedFuse.nets.warping import compose, integrate_velocity, resize_displacement, warp, warp_labels
from SlicerMedFuse.registration.regularizers import jacobian_stats
from SlicerMedFuse.registration.transforms import (
    displacement_field_image,
    displacement_to_physical,
    displacement_transform,
    physical_to_displacement,
    resample_labels,
)


def _smooth_field(shape, amplitude: float, seed: int = 0, coarse: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(1, 3, *(max(2, n // coarse) for n in shape), generator=generator)
    field = F.interpolate(noise, size=tuple(shape), mode="trilinear", align_corners=False)
    return field * (amplitude / field.abs().max())


def _oblique_geometry(size=(14, 12, 10)) -> ImageGeometry:
    angle = np.deg2rad(25.0)
    rz = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(0.4), -np.sin(0.4)], [0, np.sin(0.4), np.cos(0.4)]])
    direction = rz @ rx @ np.diag([1.0, -1.0, -1.0])  # oblique and with flipped axes (det +1)
    return ImageGeometry(size, (1.2, 0.8, 2.0), (-30.0, 12.5, 40.0), tuple(direction.reshape(-1)))


def test_zero_field_is_identity_and_integer_shifts_move_voxels():
    image = torch.rand(1, 2, 6, 7, 8)
    torch.testing.assert_close(warp(image, torch.zeros(1, 3, 6, 7, 8)), image)
    shift = torch.zeros(1, 3, 6, 7, 8)
    shift[:, 0] = 1.0  # +1 voxel along i (W)
    torch.testing.assert_close(warp(image, shift)[..., :-1], image[..., 1:])


def test_compose_of_translations_adds_them():
    a = torch.zeros(1, 3, 6, 7, 8)
    b = torch.zeros(1, 3, 6, 7, 8)
    a[:, 1], b[:, 2] = 1.5, -0.5
    torch.testing.assert_close(compose(a, b)[..., 2:-2, 2:-2, 2:-2], (a + b)[..., 2:-2, 2:-2, 2:-2])


def test_scaling_and_squaring_gives_positive_jacobians_on_a_large_smooth_field():
    shape = (32, 36, 40)
    velocity = _smooth_field(shape, amplitude=12.0, seed=3, coarse=8)  # up to 12 voxels: the plain field folds
    assert jacobian_stats(velocity)["folding_percent"] > 1.0
    u = integrate_velocity(velocity, steps=7)
    stats = jacobian_stats(u)
    assert stats["folding_percent"] == 0.0
    assert stats["min_jacobian"] > 0.0
    assert float(u.abs().max()) > 8.0  # it is a large deformation, not a vanished one
    # the inverse is the exponential of -v
    back = compose(integrate_velocity(-velocity, 7), u)
    assert float(back[..., 4:-4, 4:-4, 4:-4].abs().mean()) < 0.1


def test_resize_displacement_keeps_physical_length():
    u = torch.full((1, 3, 8, 10, 12), 1.0)
    up = resize_displacement(u, (16, 20, 24))
    torch.testing.assert_close(up, torch.full_like(up, 2.0))


def test_label_warping_keeps_label_values():
    labels = torch.zeros(1, 1, 12, 12, 12, dtype=torch.int64)
    labels[..., 2:6, 2:9, 3:7] = 4
    labels[..., 7:10, 3:8, 3:10] = 9
    u = _smooth_field((12, 12, 12), 1.5, seed=1)
    for method in ("nearest", "onehot"):
        warped = warp_labels(labels, u, method=method)
        assert set(torch.unique(warped).tolist()) <= {0, 4, 9}
    torch.testing.assert_close(warp_labels(labels, torch.zeros_like(u), method="onehot"), labels)


def test_field_export_matches_simpleitk_displacement_transform_on_an_oblique_grid():
    geometry = _oblique_geometry()
    shape = geometry.size[::-1]
    u = _smooth_field(shape, amplitude=2.0, seed=5).double()
    field = displacement_to_physical(u, geometry)
    image = displacement_field_image(field, geometry)
    assert image.GetPixelID() == sitk.sitkVectorFloat64 and image.GetDirection() == pytest.approx(geometry.direction)
    np.testing.assert_allclose(physical_to_displacement(image), u[0].numpy(), atol=1e-10)
    transform = displacement_transform(image)
    rng = np.random.default_rng(0)
    for _ in range(20):
        ijk = [int(rng.integers(0, n)) for n in geometry.size]
        point = image.TransformIndexToPhysicalPoint(ijk)
        moved = transform.TransformPoint(point)
        expected_index = np.asarray(ijk, dtype=float) + u[0, :, ijk[2], ijk[1], ijk[0]].numpy()
        np.testing.assert_allclose(image.TransformPhysicalPointToContinuousIndex(moved), expected_index, atol=1e-6)

    # resampling an image through the ITK transform equals the torch warp (inside, away from borders)
    values = _smooth_field(shape, 1.0, seed=7)[:, :1].double()
    volume = geometry.apply_to(sitk.GetImageFromArray(values[0, 0].numpy()))
    through_itk = sitk.GetArrayFromImage(sitk.Resample(volume, volume, transform, sitk.sitkLinear, 0.0))
    through_torch = warp(values, u)[0, 0].numpy()
    inside = (slice(3, -3), slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(through_itk[inside], through_torch[inside], atol=1e-6)


def test_resample_labels_through_a_physical_field_nearest_and_label_aware_agree():
    geometry = _oblique_geometry(size=(20, 18, 16))
    shape = geometry.size[::-1]
    labels_array = np.zeros(shape, dtype=np.uint8)
    labels_array[4:12, 5:13, 6:15] = 3
    labels_array[2:6, 2:8, 2:8] = 7
    labels = geometry.apply_to(sitk.GetImageFromArray(labels_array))
    zero = displacement_field_image(np.zeros((*shape, 3)), geometry)
    for method in ("nearest", "onehot"):
        np.testing.assert_array_equal(
            sitk.GetArrayFromImage(resample_labels(labels, zero, method=method)), labels_array
        )
    field = displacement_field_image(displacement_to_physical(_smooth_field(shape, 1.5, seed=2), geometry), geometry)
    nearest = sitk.GetArrayFromImage(resample_labels(labels, field, method="nearest"))
    aware = sitk.GetArrayFromImage(resample_labels(labels, field, method="onehot"))
    assert aware.dtype == np.uint8
    assert (nearest == aware).mean() > 0.95

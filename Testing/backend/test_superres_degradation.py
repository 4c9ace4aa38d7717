"""SR4ZCT degradation: F-down / F-up geometry for arbitrary thickness and overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from SlicerMedFuse.superres.degradation import (
    degradation_matrix,
    degrade,
    f_down,
    f_up,
    linear_interpolation_matrix,
    slab_centres,
)


def _interp_extrapolate(x_old: np.ndarray, y_old: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Scalar-loop linear interpolation with linear extrapolation (scipy interp1d 'extrapolate')."""
    out = np.empty(len(x_new))
    for index, x in enumerate(x_new):
        right = int(np.searchsorted(x_old, x, side="right"))
        right = min(max(right, 1), len(x_old) - 1)
        left = right - 1
        t = (x - x_old[left]) / (x_old[right] - x_old[left])
        out[index] = (1 - t) * y_old[left] + t * y_old[right]
    return out


def _reference_degrade(
    image: np.ndarray, pixel: float, thickness: float, overlap: float, points: int = 9
) -> np.ndarray:
    """Brute force, written from the paper's Fig. 2 and the authors' utils.py, column by column."""
    rows, cols = image.shape
    length = rows * pixel
    spacing = thickness - overlap
    count = 1 + int(np.floor((length - thickness) / spacing + 1e-6))
    fine = np.array([(i + 0.5) * pixel for i in range(rows)])
    centres = np.array([thickness / 2 + k * spacing for k in range(count)])
    result = np.empty_like(image, dtype=np.float64)
    for col in range(cols):
        thick = np.zeros(count)
        for j in range(points):
            offset = (j - (points - 1) / 2) * thickness / points
            thick += _interp_extrapolate(fine, image[:, col], centres + offset)
        thick /= points
        result[:, col] = _interp_extrapolate(centres, thick, fine)
    return np.clip(result, image.min(), image.max())


@pytest.mark.parametrize(
    ("pixel", "thickness", "overlap"),
    [(0.957, 4.5, 2.25), (0.7421875, 3.0, 1.0), (1.0, 5.0, 2.5), (0.8, 2.0, 0.0), (1.0, 3.0, -0.5), (1.5, 6.0, 3.0)],
)
def test_degradation_matches_brute_force(pixel, thickness, overlap):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(47, 9))
    expected = _reference_degrade(image, pixel, thickness, overlap)
    got = degrade(torch.from_numpy(image), -2, pixel, thickness, overlap).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-10)
    # the same along the other axis of a stack
    stack = torch.from_numpy(np.stack([image.T, image.T[::-1]]))
    along_columns = degrade(stack, -1, pixel, thickness, overlap).numpy()
    np.testing.assert_allclose(along_columns[0], expected.T, atol=1e-10)


@pytest.mark.parametrize(("thickness", "overlap"), [(4.5, 2.25), (3.0, 1.0), (2.0, 0.0)])
def test_constant_stays_constant(thickness, overlap):
    image = torch.full((5, 64, 40), -137.5, dtype=torch.float64)
    for dim in (-2, -1):
        np.testing.assert_allclose(degrade(image, dim, 0.9, thickness, overlap).numpy(), -137.5, atol=1e-9)
        np.testing.assert_allclose(f_down(image, dim, 0.9, thickness, overlap).numpy(), -137.5, atol=1e-9)
    # rows of every matrix sum to one
    matrix = degradation_matrix(64, 0.9, thickness, overlap)
    np.testing.assert_allclose(matrix.sum(dim=1).numpy(), 1.0, atol=1e-12)


def test_slab_geometry():
    # 108 slices of 1.5 mm (162 mm) hold 1 + floor((162 - 4.5) / 2.25) = 71 slabs of 4.5 mm every 2.25 mm
    centres = slab_centres(162.0, 4.5, 2.25)
    assert centres.numel() == 71
    assert centres[0].item() == pytest.approx(2.25) and centres[1].item() - centres[0].item() == pytest.approx(2.25)
    assert centres[-1].item() + 2.25 <= 162.0 + 1e-9
    # a thin feature (one 1 mm pixel) spreads over exactly the slabs whose extent contains it
    image = torch.zeros(40, 1, dtype=torch.float64)
    image[20] = 1.0  # covers [20, 21] mm
    thick = f_down(image, 0, 1.0, 3.0, 1.0)[:, 0]
    centres = slab_centres(40.0, 3.0, 1.0)
    touched = (centres - 1.5 < 21.0) & (centres + 1.5 > 20.0)
    assert torch.all(thick[~touched] == 0) and torch.all(thick[touched] > 0)
    # a linear ramp survives F-down (averaging symmetric points) and F-up exactly
    ramp = torch.arange(60, dtype=torch.float64)[:, None] * 2.0 + 1.0
    down = f_down(ramp, 0, 1.0, 4.0, 1.5)
    np.testing.assert_allclose(down[:, 0].numpy(), 2.0 * (slab_centres(60.0, 4.0, 1.5) - 0.5).numpy() + 1.0, atol=1e-9)
    up = f_up(down, 0, 4.0, 1.5, (torch.arange(60, dtype=torch.float64) + 0.5))
    np.testing.assert_allclose(up.numpy(), ramp.numpy(), atol=1e-9)


def test_interpolation_matrix_and_errors():
    source = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    matrix = linear_interpolation_matrix(source, torch.tensor([-1.0, 0.5, 2.0, 4.0]))
    values = torch.tensor([1.0, 3.0, 7.0], dtype=torch.float64)
    np.testing.assert_allclose((matrix @ values).numpy(), [-1.0, 2.0, 5.0, 9.0])
    clamped = linear_interpolation_matrix(source, torch.tensor([-1.0, 4.0]), extrapolate=False)
    np.testing.assert_allclose((clamped @ values).numpy(), [1.0, 7.0])
    with pytest.raises(ValueError, match="overlap"):
        degrade(torch.zeros(10, 10), 0, 1.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="fewer than 2"):
        degrade(torch.zeros(4, 10), 0, 1.0, 3.0, 1.0)
    with pytest.raises(ValueError, match="increasing"):
        linear_interpolation_matrix(torch.tensor([0.0, 0.0]), torch.tensor([1.0]))

"""Deformable instance optimisation: a field kept coarser than the images (``field_scale``) still registers."""

from __future__ import annotations

import pytest
import torch

from SlicerMedFuse.registration.instance_optimization import DeformableConfig, level_shapes, optimize_displacement

SHAPE = (24, 28, 32)


def _blobs() -> torch.Tensor:
    """A smooth test image: a few Gaussian blobs of different sizes away from the borders."""
    z, y, x = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in SHAPE), indexing="ij")
    image = torch.zeros(SHAPE)
    for cz, cy, cx, s in ((8, 10, 10, 3.0), (15, 18, 20, 4.0), (12, 9, 22, 2.5), (17, 20, 11, 3.5)):
        image += torch.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s))
    return image[None, None]


@pytest.mark.parametrize("field_scale", [1.0, 2.0])
def test_a_known_translation_is_recovered_with_a_full_or_half_resolution_field(field_scale):
    fixed = _blobs()
    moving = torch.roll(fixed, shifts=2, dims=4)  # moving(i) = fixed(i - 2): the field is +2 voxels along i
    config = DeformableConfig(
        levels=2, iterations=(40, 20), finest_scale=1.0, field_scale=field_scale, lncc_window=5, gamma=50.0
    )
    result = optimize_displacement(fixed, moving, config)
    half = level_shapes(SHAPE, (1.0, 1.0, 1.0), 1, 2.0)[0]
    assert tuple(result.finest_displacement.shape[2:]) == (half if field_scale == 2.0 else SHAPE)
    assert tuple(result.displacement.shape[2:]) == SHAPE
    inside = fixed[0, 0] > 0.2
    mean = result.displacement[0][:, inside].mean(dim=1)
    torch.testing.assert_close(mean, torch.tensor([2.0, 0.0, 0.0]), atol=0.3, rtol=0.0)


def test_field_scale_below_one_is_refused():
    with pytest.raises(ValueError, match="field_scale"):
        DeformableConfig(field_scale=0.5)

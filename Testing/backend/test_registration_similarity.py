"""Similarity terms: LNCC and MIND-SSC behave as the papers define them, and their gradients are right."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from SlicerMedFuse.registration.similarity import (
    LNCC,
    MINDSSC,
    box_filter,
    lncc_loss,
    lncc_map,
    make_similarity,
    mind_loss,
    mind_ssc,
    mse_loss,
)


def _blobs(shape=(24, 28, 32), seed: int = 0) -> torch.Tensor:
    """A smooth random image in 0..1, (1, 1, D, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 1, *(n // 4 for n in shape), generator=generator)
    image = F.interpolate(noise, size=shape, mode="trilinear", align_corners=False)
    return (image - image.min()) / (image.max() - image.min())


@pytest.mark.parametrize("radius", [1, 2, 3, 5])  # shifted adds up to radius 3, running sums beyond
def test_box_filter_matches_zero_padded_average_pooling(radius):
    x = torch.rand(2, 3, 9, 10, 11, dtype=torch.float64)
    expected = F.avg_pool3d(F.pad(x, [radius] * 6), 2 * radius + 1, stride=1)
    torch.testing.assert_close(box_filter(x, radius), expected)


@pytest.mark.parametrize("radius", [1, 4])
def test_box_filter_replicate_padding_equals_padding_then_pooling(radius):
    x = torch.rand(1, 2, 7, 8, 9, dtype=torch.float64)
    expected = F.avg_pool3d(F.pad(x, [radius] * 6, mode="replicate"), 2 * radius + 1, stride=1)
    torch.testing.assert_close(box_filter(x, radius, padding="replicate"), expected)


def test_box_filter_window_wider_than_an_axis():
    x = torch.rand(1, 1, 2, 5, 6, dtype=torch.float64)
    expected = F.avg_pool3d(F.pad(x, [3] * 6), 7, stride=1)
    torch.testing.assert_close(box_filter(x, 3), expected)


def test_mind_term_from_pooled_descriptors_equals_one_built_from_the_image():
    image, other = _blobs(seed=1), _blobs(seed=2)
    direct = MINDSSC(image)
    pooled = MINDSSC.from_descriptors(mind_ssc(image))
    features = direct.features(other)
    torch.testing.assert_close(pooled(features), direct(features))


def test_lncc_of_an_image_with_itself_is_perfect_and_invariant_to_linear_intensity_changes():
    image = _blobs()
    assert float(lncc_map(image, image).max()) == pytest.approx(1.0, abs=1e-3)
    term = LNCC(image)
    self_loss = float(term(term.features(image)))
    assert self_loss < -0.99
    assert float(term(term.features(3.0 * image + 7.0))) == pytest.approx(self_loss, abs=1e-4)
    shifted = torch.roll(image, shifts=3, dims=4)
    assert float(term(term.features(shifted))) > self_loss + 0.05  # misalignment is worse
    # the functional form (fixed 1e-5 stabiliser) agrees on what is better
    assert float(lncc_loss(image, image)) < float(lncc_loss(image, shifted))


def test_lncc_analytic_gradient_matches_finite_differences_with_and_without_weights():
    fixed = torch.rand(1, 1, 7, 8, 9, dtype=torch.float64)
    moving = torch.rand(1, 1, 7, 8, 9, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(1, 1, 7, 8, 9, dtype=torch.float64)
    term = LNCC(fixed, window=5)
    for w in (None, weight):
        assert torch.autograd.gradcheck(lambda m, w=w: term(m, w), (moving,))


def test_mind_is_invariant_to_intensity_scaling_and_inversion():
    image = _blobs(seed=1)
    descriptor = mind_ssc(image)
    assert descriptor.shape == (1, 12, *image.shape[2:])
    assert float(descriptor.min()) > 0 and float(descriptor.max()) <= 1.0
    torch.testing.assert_close(mind_ssc(5.0 * image + 2.0), descriptor, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mind_ssc(1.0 - image), descriptor, atol=1e-5, rtol=1e-4)  # T1 -> T2-like
    assert float(mind_loss(image, 1.0 - image)) < 1e-8
    term = MINDSSC(image)
    inverted = term.features(1.0 - image)
    assert float(term(inverted)) < 1e-8
    assert float(term(term.features(torch.roll(1.0 - image, 2, dims=3)))) > 1e-4


def test_mse_and_factory():
    image = _blobs()
    assert float(mse_loss(image, image)) == 0.0
    assert isinstance(make_similarity("lncc", image), LNCC)
    assert make_similarity("mind", image).name == "mind"
    assert float(make_similarity("mse", image)(image + 0.5)) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="similarity must be one of"):
        make_similarity("mi", image)

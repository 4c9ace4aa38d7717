"""Anatomy variation of the real head CT: atrophy, ventricles, calcifications and head holder where they belong."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage import _morphology as morph
from SlicerMedFuse.hemorrhage.anatomy import analyze_head_ct
from SlicerMedFuse.hemorrhage.anatomy_variation import (
    CALCIFICATION_SITES,
    AnatomyVariation,
    sample_anatomy_variation,
    vary_anatomy,
)

from .hemorrhage_data import head_ct as binned_head_ct

EVERYTHING = AnatomyVariation(3.0, 5.0, CALCIFICATION_SITES, 400.0, True)


@pytest.fixture(scope="module")
def head_ct(shared_data):
    """The real head CT binned to 1.9 x 1.9 x 3 mm, int16 HU (coarse voxels: small deposits are partial-volumed)."""
    return binned_head_ct(shared_data)


@pytest.fixture(scope="module")
def anatomy(head_ct):
    return analyze_head_ct(head_ct)


def _vary(ct: sitk.Image, anatomy, variation: AnatomyVariation, seed: int = 0) -> np.ndarray:
    out = vary_anatomy(ct, anatomy, variation, np.random.default_rng(seed))
    assert out.GetSize() == ct.GetSize() and out.GetPixelID() == ct.GetPixelID()
    assert out.GetSpacing() == ct.GetSpacing() and out.GetOrigin() == ct.GetOrigin()
    assert out.GetDirection() == ct.GetDirection()
    return sitk.GetArrayFromImage(out).astype(np.float32)


def _lps(ct: sitk.Image, mask: np.ndarray) -> np.ndarray:
    """LPS coordinates (mm) of the voxels of a mask, ``(n, 3)``."""
    return morph.physical_axes(ct, (0, 0, 0), mask.shape)[:, mask].T


def test_sampled_variations_cover_the_stated_ranges():
    rng = np.random.default_rng(7)
    draws = [sample_anatomy_variation(rng) for _ in range(400)]
    assert sample_anatomy_variation(np.random.default_rng(7)) == draws[0]
    atrophy = np.array([d.atrophy_mm for d in draws])
    assert 0.25 < np.mean(atrophy == 0.0) < 0.42 and atrophy.max() <= 4.0
    assert 0.0 <= min(d.ventricle_growth_mm for d in draws) and max(d.ventricle_growth_mm for d in draws) <= 6.0
    assert all(90.0 <= d.calcification_hu <= 600.0 for d in draws)
    share = {site: np.mean([site in d.calcifications for d in draws]) for site in CALCIFICATION_SITES}
    assert share["choroid_plexus"] > share["pineal"] > share["falx"] > share["basal_ganglia"] > 0.1
    assert 0.4 < np.mean([d.head_holder for d in draws]) < 0.6
    assert draws[0].to_dict()["calcifications"] == list(draws[0].calcifications)


def test_bad_settings_and_foreign_anatomy_are_refused(head_ct, anatomy):
    with pytest.raises(UsageError, match="unknown calcification"):
        AnatomyVariation(0.0, 0.0, ("skull",), 200.0, False)
    with pytest.raises(UsageError, match=">= 0"):
        AnatomyVariation(-1.0, 0.0, (), 0.0, False)
    other = sitk.BinShrink(head_ct, [2, 1, 1])
    with pytest.raises(InputError, match="another image"):
        vary_anatomy(other, anatomy, EVERYTHING, np.random.default_rng(0))


def test_no_variation_returns_the_same_image(head_ct, anatomy):
    out = vary_anatomy(head_ct, anatomy, AnatomyVariation.none(), np.random.default_rng(0))
    assert out is not head_ct
    np.testing.assert_array_equal(sitk.GetArrayFromImage(out), sitk.GetArrayFromImage(head_ct))


def test_same_seed_same_image_and_input_untouched(head_ct, anatomy):
    before = sitk.GetArrayFromImage(head_ct).copy()
    first, second = _vary(head_ct, anatomy, EVERYTHING, 3), _vary(head_ct, anatomy, EVERYTHING, 3)
    np.testing.assert_array_equal(first, second)
    assert np.any(first != _vary(head_ct, anatomy, EVERYTHING, 4))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(head_ct), before)


def test_atrophy_and_ventricle_growth_add_csf_inside_the_cavity_only(head_ct, anatomy):
    hu = sitk.GetArrayFromImage(head_ct).astype(np.float32)
    csf_before = anatomy.volume_ml(
        anatomy.icv & (morph.smooth_mm(hu, 1.0, anatomy.spacing_zyx) < anatomy.csf_threshold_hu)
    )
    for variation in (AnatomyVariation(3.0, 0.0, (), 0.0, False), AnatomyVariation(0.0, 5.0, (), 0.0, False)):
        out = _vary(head_ct, anatomy, variation)
        assert not np.any((out != hu) & ~anatomy.icv)
        smooth = morph.smooth_mm(out, 1.0, anatomy.spacing_zyx)
        csf_after = anatomy.volume_ml(anatomy.icv & (smooth < anatomy.csf_threshold_hu))
        assert csf_after > csf_before + 20.0, variation
        # The new CSF carries the CT's noise, not a flat value.
        changed = (hu - out > 10.0) & anatomy.brain
        assert np.std(out[changed & (smooth < anatomy.csf_threshold_hu)]) > 2.0
    grown = _vary(head_ct, anatomy, AnatomyVariation(0.0, 5.0, (), 0.0, False))
    near_ventricles = morph.distance_outside_mm(anatomy.ventricles, anatomy.spacing_zyx) <= 6.5
    assert not np.any((grown != hu) & ~near_ventricles)


def _calcified(head_ct, anatomy, site: str, seed: int, growth_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Voxels a site's calcification changed, and the output HU."""
    hu = sitk.GetArrayFromImage(head_ct).astype(np.float32)
    base = _vary(head_ct, anatomy, AnatomyVariation(0.0, growth_mm, (), 0.0, False), seed) if growth_mm else hu
    out = _vary(head_ct, anatomy, AnatomyVariation(0.0, growth_mm, (site,), 400.0, False), seed)
    return out != base, out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("site", CALCIFICATION_SITES)
def test_calcifications_are_dense_inside_the_cavity(head_ct, anatomy, site, seed):
    changed, out = _calcified(head_ct, anatomy, site, seed)
    assert changed.any()
    assert not np.any(changed & ~anatomy.icv)
    assert out[changed].max() > anatomy.tissue_hu + 50.0
    dense = changed & (out > anatomy.tissue_hu + 30.0)
    x = _lps(head_ct, dense)[:, 0] - anatomy.midline_lps[0]
    if site in ("choroid_plexus", "basal_ganglia"):
        assert x.min() < -8.0 and x.max() > 8.0  # bilateral
    else:
        assert np.abs(x).max() < 6.0  # on the midline


def test_choroid_plexus_lies_in_the_back_of_the_grown_ventricles(head_ct, anatomy):
    changed, _ = _calcified(head_ct, anatomy, "choroid_plexus", 2, growth_mm=3.0)
    grown = morph.distance_outside_mm(anatomy.ventricles, anatomy.spacing_zyx) <= 3.5
    assert not np.any(changed & ~grown)
    points, ventricles = _lps(head_ct, changed), _lps(head_ct, anatomy.ventricles)
    assert np.median(points[:, 1]) > np.median(ventricles[:, 1])  # posterior (LPS +y)


def test_falx_is_in_the_upper_cavity_and_basal_ganglia_lateral(head_ct, anatomy):
    falx = _lps(head_ct, _calcified(head_ct, anatomy, "falx", 5)[0])
    assert falx[:, 2].min() >= anatomy.midline_lps[2] - 1e-3  # upper half of the cavity
    ganglia = _lps(head_ct, _calcified(head_ct, anatomy, "basal_ganglia", 5)[0])
    assert 14.0 < np.median(np.abs(ganglia[:, 0] - anatomy.midline_lps[0])) < 30.0


def test_head_holder_fills_only_air_behind_the_head(head_ct, anatomy):
    hu = sitk.GetArrayFromImage(head_ct).astype(np.float32)
    out = _vary(head_ct, anatomy, AnatomyVariation(0.0, 0.0, (), 0.0, True), 1)
    changed = out != hu
    assert changed.any() and np.all(hu[changed] < -500.0)
    assert np.all(_lps(head_ct, changed)[:, 1] > anatomy.midline_lps[1] - 10.0)  # posterior
    assert np.count_nonzero(changed & (out > 100.0)) > 100  # a plastic shell
    beyond_skull = morph.distance_outside_mm(anatomy.icv, anatomy.spacing_zyx) > 5.0
    assert not np.any(changed & ~beyond_skull)


def test_orientation_comes_from_the_image_direction(head_ct, anatomy):
    """The same head stored with the rows reversed (anterior first): everything lands at the same places."""
    array = sitk.GetArrayFromImage(head_ct)[:, ::-1, :]
    flipped = sitk.GetImageFromArray(np.ascontiguousarray(array))
    flipped.SetSpacing(head_ct.GetSpacing())
    direction = np.asarray(head_ct.GetDirection()).reshape(3, 3)
    direction[:, 1] *= -1.0
    flipped.SetDirection(tuple(direction.ravel()))
    flipped.SetOrigin(head_ct.TransformIndexToPhysicalPoint((0, head_ct.GetHeight() - 1, 0)))
    flipped_anatomy = dataclasses.replace(
        anatomy,
        reference=flipped,
        **{
            field.name: np.ascontiguousarray(getattr(anatomy, field.name)[:, ::-1, :])
            for field in dataclasses.fields(anatomy)
            if isinstance(getattr(anatomy, field.name), np.ndarray)
        },
    )
    hu = sitk.GetArrayFromImage(flipped).astype(np.float32)
    out = _vary(flipped, flipped_anatomy, AnatomyVariation(0.0, 0.0, ("choroid_plexus",), 400.0, True), 0)
    holder = (out != hu) & (hu < -500.0)
    assert np.all(_lps(flipped, holder)[:, 1] > anatomy.midline_lps[1] - 10.0)
    plexus = _lps(flipped, (out != hu) & anatomy.icv[:, ::-1, :])
    assert np.median(plexus[:, 1]) > np.median(_lps(head_ct, anatomy.ventricles)[:, 1])


def test_float_images_stay_float(head_ct, anatomy):
    ct = sitk.Cast(head_ct, sitk.sitkFloat32)
    out = _vary(ct, anatomy, EVERYTHING, 0)
    assert np.any(out != np.rint(out))

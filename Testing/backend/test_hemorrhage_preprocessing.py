"""BHSD preprocessing numbers, CT windows, and the bad-input checks (MR given as CT, no head)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage.preprocessing import (
    BRAIN_WINDOW,
    WINDOWS,
    CTWindow,
    bhsd_normalize,
    check_ct_intensities,
    check_head_in_view,
    intensity_evidence,
    multi_window,
    preprocess_ct,
)


@pytest.fixture(scope="module")
def head_ct(shared_data):
    """The real head CT at half in-plane resolution (128 x 128 x 108, 1.9 x 1.9 x 1.5 mm), int16 HU."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return sitk.Cast(sitk.BinShrink(image, [2, 2, 1]), sitk.sitkInt16)


def test_bhsd_normalisation_matches_the_paper():
    hu = np.array([40.0, 120.0, -1000.0, 500.0, -40.0, 80.0, 0.0])
    expected = np.array([0.0, 1.0, -1.0, 1.0, -1.0, 0.5, -0.5], np.float32)
    out = bhsd_normalize(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-7)
    np.testing.assert_allclose(bhsd_normalize(torch.tensor(hu)).numpy(), expected, atol=1e-7)
    assert BRAIN_WINDOW.hu_range == (-40.0, 120.0)


def test_windows_stack_as_channels_with_brain_first():
    hu = np.linspace(-1100, 2000, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    stacked = multi_window(hu, ("brain", "subdural", "bone"))
    assert stacked.shape == (3, 2, 3, 4)
    np.testing.assert_array_equal(stacked[0], bhsd_normalize(hu))
    assert stacked.min() >= -1.0 and stacked.max() <= 1.0
    np.testing.assert_allclose(WINDOWS["bone"].apply(np.array([600.0, -800.0, 2000.0])), [0.0, -1.0, 1.0])
    tensor = multi_window(torch.from_numpy(hu), [WINDOWS["subdural"], CTWindow("custom", 0.0, 100.0)])
    assert tuple(tensor.shape) == (2, 2, 3, 4)
    with pytest.raises(UsageError, match="Unknown CT window 'lung'"):
        multi_window(hu, ("lung",))
    with pytest.raises(ValueError, match="positive width"):
        CTWindow("flat", 40.0, 0.0)


def test_preprocess_ct_gives_channels_first_float32(head_ct):
    array = preprocess_ct(head_ct, ("brain", "bone"))
    assert array.shape == (2, *reversed(head_ct.GetSize()))
    assert array.dtype == np.float32


def test_real_head_ct_passes_both_checks(head_ct):
    evidence = check_ct_intensities(head_ct)
    assert evidence.looks_like_ct and evidence.air_fraction > 0.3
    assert 1000.0 < check_head_in_view(head_ct) < 1800.0


def test_mr_like_and_unscaled_images_are_refused(head_ct):
    hu = sitk.GetArrayFromImage(head_ct).astype(np.float32)
    mr_like = sitk.GetImageFromArray(np.clip(hu + 1024.0, 0, None) * 0.3)  # positive arbitrary units
    mr_like.CopyInformation(head_ct)
    with pytest.raises(InputError, match="looks like an MR"):
        check_ct_intensities(mr_like)
    assert not intensity_evidence(mr_like).looks_like_ct
    unscaled = sitk.Cast(head_ct, sitk.sitkInt32) + 1024  # raw stored values, rescale intercept lost
    with pytest.raises(InputError, match="Hounsfield"):
        check_ct_intensities(unscaled)


def test_no_head_in_view_is_refused(head_ct):
    neck = head_ct[:, :, :6]  # the lowest 6 slices: face and neck, no cranial cavity
    with pytest.raises(InputError, match="No head was found"):
        check_head_in_view(neck)
    phantom = np.full((40, 64, 64), -1000.0, np.float32)
    zz, yy, xx = np.mgrid[:40, :64, :64]
    phantom[(yy - 32) ** 2 + (xx - 32) ** 2 < 25**2] = 0.0  # a water cylinder: CT-like, no skull
    image = sitk.GetImageFromArray(phantom)
    image.SetSpacing((1.0, 1.0, 2.0))
    check_ct_intensities(image)
    with pytest.raises(InputError, match="No head was found"):
        check_head_in_view(image)

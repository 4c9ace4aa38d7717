"""Brain, ventricle, CSF-space and inner-table masks derived from the real head CT."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.hemorrhage import _morphology as morph
from SlicerMedFuse.hemorrhage.anatomy import analyze_head_ct, superior_axis


@pytest.fixture(scope="module")
def head_ct(shared_data):
    """The real head CT (has a head-holder arc) at half in-plane resolution: 128 x 128 x 108, 1.9 x 1.9 x 1.5 mm."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return sitk.Cast(sitk.BinShrink(image, [2, 2, 1]), sitk.sitkInt16)


@pytest.fixture(scope="module")
def anatomy(head_ct):
    return analyze_head_ct(head_ct)


def test_volumes_are_those_of_an_adult_head(anatomy):
    assert 1100.0 < anatomy.volume_ml(anatomy.icv) < 1700.0
    assert 0.75 < anatomy.volume_ml(anatomy.brain) / anatomy.volume_ml(anatomy.icv) < 0.95
    assert 15.0 < anatomy.volume_ml(anatomy.ventricles) < 120.0  # enlarged (atrophic) but plausible
    assert anatomy.volume_ml(anatomy.sulci) > 20.0
    assert 15.0 < anatomy.tissue_hu < 45.0 and anatomy.csf_threshold_hu < anatomy.tissue_hu


def test_masks_nest_and_do_not_overlap(anatomy):
    for name in ("brain", "csf", "ventricles", "sulci", "cisterns", "inner_table", "convexity"):
        mask = getattr(anatomy, name)
        assert mask.shape == anatomy.icv.shape and mask.dtype == bool
        assert not np.any(mask & ~anatomy.icv), name
    assert not np.any(anatomy.brain & anatomy.csf)
    assert not np.any(anatomy.ventricles & anatomy.subarachnoid)
    assert not np.any(anatomy.convexity & ~anatomy.inner_table)
    calcified = anatomy.icv & anatomy.bone  # only small deep calcifications (pineal, plexus), never skull
    assert anatomy.volume_ml(calcified) < 0.5
    assert np.all(anatomy.depth_mm[calcified] > 10.0)


def test_ventricles_are_central_and_deep(anatomy, head_ct):
    coords = morph.physical_axes(head_ct, (0, 0, 0), anatomy.icv.shape)
    x = coords[0][anatomy.ventricles]
    assert abs(float(np.median(x)) - anatomy.midline_lps[0]) < 10.0
    assert float(np.median(anatomy.depth_mm[anatomy.ventricles])) > 25.0
    assert np.all(anatomy.depth_mm[anatomy.sulci] < 15.0)


def test_inner_table_lies_against_the_skull(anatomy):
    distance_to_bone = morph.distance_outside_mm(anatomy.bone, anatomy.spacing_zyx)
    assert np.all(anatomy.depth_mm[anatomy.inner_table] <= 2.5)
    assert np.all(distance_to_bone[anatomy.inner_table] <= 3.5)
    # the convexity is above the skull base: higher on average than the cavity
    s = morph.physical_axes(anatomy.reference, (0, 0, 0), anatomy.icv.shape)[2]
    assert float(s[anatomy.convexity].mean()) > float(s[anatomy.icv].mean())


def test_same_anatomy_in_another_orientation_and_thick_slices(head_ct, anatomy):
    flipped = sitk.PermuteAxes(sitk.Flip(head_ct, [True, True, False]), [1, 0, 2])
    other = analyze_head_ct(flipped)
    assert superior_axis(flipped) == (0, 1)
    assert other.volume_ml(other.icv) == pytest.approx(anatomy.volume_ml(anatomy.icv), rel=0.02)
    assert other.volume_ml(other.ventricles) == pytest.approx(anatomy.volume_ml(anatomy.ventricles), rel=0.05)
    size = [head_ct.GetSize()[0], head_ct.GetSize()[1], head_ct.GetSize()[2] * 3 // 10]
    spacing = (*head_ct.GetSpacing()[:2], 5.0)  # BHSD-like 5 mm slices
    thick = sitk.Resample(
        head_ct, size, sitk.Transform(), sitk.sitkLinear, head_ct.GetOrigin(), spacing, head_ct.GetDirection(), -1024
    )
    coarse = analyze_head_ct(thick)
    assert coarse.volume_ml(coarse.icv) == pytest.approx(anatomy.volume_ml(anatomy.icv), rel=0.15)
    assert coarse.volume_ml(coarse.ventricles) > 5.0


def test_images_keep_the_ct_geometry(anatomy, head_ct):
    image = anatomy.image("ventricles")
    assert image.GetSize() == head_ct.GetSize() and image.GetOrigin() == head_ct.GetOrigin()
    assert anatomy.image("depth_mm").GetPixelID() == sitk.sitkFloat32


def test_a_2d_image_is_refused():
    with pytest.raises(InputError, match="3-D"):
        analyze_head_ct(sitk.Image(32, 32, sitk.sitkInt16))

"""The hemorrhage simulator on the real head CT: anatomical placement, density, exact labels, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.hemorrhage._morphology import physical_axes
from SlicerMedFuse.hemorrhage.anatomy import analyze_head_ct
from SlicerMedFuse.hemorrhage.labels import HemorrhageClass
from SlicerMedFuse.hemorrhage.simulator import SimulationConfig, estimate_noise, simulate_hemorrhage

ALL = ("EDH", "IPH", "IVH", "SAH", "SDH")
STILL = SimulationConfig(mass_effect=False)


@pytest.fixture(scope="module")
def head_ct(shared_data):
    """The real head CT at half in-plane resolution (128 x 128 x 108, 1.9 x 1.9 x 1.5 mm), int16 HU."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return sitk.Cast(sitk.BinShrink(image, [2, 2, 1]), sitk.sitkInt16)


@pytest.fixture(scope="module")
def anatomy(head_ct):
    return analyze_head_ct(head_ct)


@pytest.fixture(scope="module")
def still_cases(head_ct, anatomy):
    """All five classes without mass effect (anatomy unchanged), for two seeds."""
    return [simulate_hemorrhage(head_ct, ALL, seed=seed, config=STILL, anatomy=anatomy) for seed in (3, 4)]


def _arrays(case):
    return sitk.GetArrayFromImage(case.image).astype(np.float32), sitk.GetArrayFromImage(case.labels)


def _core(mask: np.ndarray) -> np.ndarray:
    eroded = sitk.BinaryErode(sitk.GetImageFromArray(mask.astype(np.uint8)), [1, 1, 1], sitk.sitkCross)
    return sitk.GetArrayFromImage(eroded).astype(bool)


def test_every_class_is_painted_with_its_volume(still_cases, head_ct):
    voxel_ml = float(np.prod(head_ct.GetSpacing())) / 1000.0
    for case in still_cases:
        _, labels = _arrays(case)
        assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1, 2, 3, 4, 5}
        for cls in HemorrhageClass:
            if cls:
                count = int(np.count_nonzero(labels == cls))
                assert count > 0, cls.name
                assert case.volumes_ml[cls.name] == pytest.approx(count * voxel_ml)
        assert [lesion.cls.name for lesion in case.lesions] == ["EDH", "SDH", "IPH", "IVH", "SAH"]


def test_extra_axial_bleeds_lie_against_the_inner_table(still_cases, anatomy):
    for case in still_cases:
        _, labels = _arrays(case)
        for cls, max_thickness in ((HemorrhageClass.EDH, 18.0), (HemorrhageClass.SDH, 10.0)):
            depth = anatomy.depth_mm[labels == cls]
            assert depth.min() <= 2.5, cls.name  # touches the inner table
            assert np.percentile(depth, 99) <= max_thickness * 1.1 + 2.0, cls.name  # no deeper than its thickness
            assert not np.any((labels == cls) & (anatomy.ventricles | ~anatomy.icv)), cls.name


def test_ivh_iph_and_sah_sit_in_their_compartments(still_cases, anatomy):
    for case in still_cases:
        _, labels = _arrays(case)
        ivh, iph, sah = (labels == c for c in (HemorrhageClass.IVH, HemorrhageClass.IPH, HemorrhageClass.SAH))
        assert not np.any(ivh & ~anatomy.ventricles)
        assert not np.any(iph & anatomy.ventricles)
        assert np.count_nonzero(iph & anatomy.brain) >= 0.85 * np.count_nonzero(iph)
        assert anatomy.depth_mm[iph].min() >= 2.0
        assert not np.any(sah & ~anatomy.subarachnoid)


def test_ivh_layers_dependently_with_a_flat_fluid_level(still_cases, head_ct, anatomy):
    """Supine (gravity posterior): IVH is exactly the part of its ventricles behind one coronal level."""
    coords = physical_axes(head_ct, (0, 0, 0), anatomy.icv.shape)
    lateral, posterior = coords[0] - anatomy.midline_lps[0], coords[1]  # LPS y grows toward posterior
    for case in still_cases:
        _, labels = _arrays(case)
        ivh = labels == HemorrhageClass.IVH
        if np.all(lateral[ivh] >= 0):
            chosen = anatomy.ventricles & (lateral >= 0)
        elif np.all(lateral[ivh] <= 0):
            chosen = anatomy.ventricles & (lateral <= 0)
        else:
            chosen = anatomy.ventricles
        level = posterior[ivh].min()
        assert np.count_nonzero(ivh ^ (chosen & (posterior >= level))) <= 0.01 * np.count_nonzero(ivh)
        assert 0.05 < np.count_nonzero(ivh) / np.count_nonzero(chosen) < 0.5


def test_blood_density_is_acute_blood(still_cases, head_ct):
    original = sitk.GetArrayFromImage(head_ct).astype(np.float32)
    for case in still_cases:
        image, labels = _arrays(case)
        for lesion in case.lesions:
            mask = labels == lesion.cls
            if lesion.cls == HemorrhageClass.SAH:  # thin: judge all of it against the CSF it replaced
                assert image[mask].mean() > original[mask].mean() + 25.0
                assert 40.0 <= image[mask].mean() <= 95.0
                continue
            core = _core(mask)
            assert np.count_nonzero(core) > 20, lesion.cls.name
            assert 48.0 <= float(np.mean(image[core])) <= 92.0, lesion.cls.name
            assert 48.0 <= float(np.median(image[core])) <= 92.0, lesion.cls.name
            assert abs(float(np.mean(image[core])) - lesion.mean_hu) < 4.0, lesion.cls.name


def test_noise_inside_bleeds_matches_the_ct(still_cases, head_ct, anatomy):
    noise = estimate_noise(head_ct, anatomy)
    assert 1.0 < noise.sigma_hu < 15.0
    image, labels = _arrays(still_cases[0])
    core = _core(labels == HemorrhageClass.IPH)
    residual = image - sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(still_cases[0].image, 1.5))
    values = residual[core]
    measured = 1.4826 * np.median(np.abs(values - np.median(values)))
    assert 0.6 * noise.sigma_hu < measured < 1.5 * noise.sigma_hu


def test_same_seed_same_case_other_seed_other_case(head_ct, anatomy, still_cases):
    again = simulate_hemorrhage(head_ct, ALL, seed=3, config=STILL, anatomy=anatomy)
    for first, second in zip(_arrays(still_cases[0]), _arrays(again), strict=True):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(_arrays(still_cases[0])[1], _arrays(still_cases[1])[1])


def test_input_untouched_and_geometry_kept(head_ct, anatomy, still_cases):
    before = sitk.GetArrayFromImage(head_ct).copy()
    case = simulate_hemorrhage(head_ct, ["IPH"], seed=1, anatomy=anatomy)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(head_ct), before)
    for image in (case.image, case.labels):
        assert image.GetSize() == head_ct.GetSize()
        assert image.GetOrigin() == head_ct.GetOrigin()
        assert image.GetSpacing() == head_ct.GetSpacing()
        assert image.GetDirection() == head_ct.GetDirection()
    assert case.image.GetPixelID() == head_ct.GetPixelID()
    assert case.labels.GetPixelID() == sitk.sitkUInt8
    as_float = simulate_hemorrhage(sitk.Cast(head_ct, sitk.sitkFloat32), ["IPH"], seed=1, anatomy=anatomy)
    assert as_float.image.GetPixelID() == sitk.sitkFloat32


def test_mass_effect_moves_brain_but_not_skull(head_ct, anatomy):
    pushed = simulate_hemorrhage(head_ct, ["EDH", "IPH"], seed=7, anatomy=anatomy)
    still = simulate_hemorrhage(head_ct, ["EDH", "IPH"], seed=7, config=STILL, anatomy=anatomy)
    original = sitk.GetArrayFromImage(head_ct)
    image, labels = (sitk.GetArrayFromImage(x) for x in (pushed.image, pushed.labels))
    unlabelled_brain = anatomy.brain & (labels == 0) & (sitk.GetArrayFromImage(still.labels) == 0)
    assert np.mean(image[unlabelled_brain] != sitk.GetArrayFromImage(still.image)[unlabelled_brain]) > 0.005
    skull = anatomy.bone & ~anatomy.icv
    np.testing.assert_array_equal(image[skull], original[skull])
    assert set(np.unique(labels)) == {0, 1, 2}


def test_random_mix_and_bad_settings(head_ct, anatomy):
    case = simulate_hemorrhage(head_ct, None, seed=11, anatomy=anatomy)
    assert case.lesions and sum(case.volumes_ml.values()) > 0
    with pytest.raises(UsageError, match="unknown hemorrhage class"):
        simulate_hemorrhage(head_ct, ["chronic"], anatomy=anatomy)
    with pytest.raises(UsageError, match="iph_volume_ml"):
        SimulationConfig(iph_volume_ml=(30.0, 3.0))
    with pytest.raises(UsageError, match="class_probability"):
        SimulationConfig(class_probability={"EDH": 1.5})
    with pytest.raises(UsageError, match="gravity_lps"):
        SimulationConfig(gravity_lps=(0.0, 0.0, 0.0))


def test_smooth_noise_on_boxes_thinner_than_four_voxels():
    # ITK's recursive Gaussian refuses axes under 4 voxels; small bleed boxes on coarse grids have them.
    from SlicerMedFuse.hemorrhage._morphology import smooth_noise

    field = smooth_noise((3, 20, 1), 3.0, (3.8, 3.8, 3.8), np.random.default_rng(0))
    assert field.shape == (3, 20, 1) and np.all(np.isfinite(field))
    assert abs(float(field.std()) - 1.0) < 1e-3


def test_simulates_on_a_coarse_ct(shared_data):
    """3.8 mm in-plane voxels (the real CT binned 4 x 4 x 2) used to crash the texture of small bleeds."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    coarse = sitk.Cast(sitk.BinShrink(image, [4, 4, 2]), sitk.sitkInt16)
    assert coarse.GetSpacing()[0] > 3.8
    for seed in range(3):
        case = simulate_hemorrhage(coarse, ALL, seed=seed)
        assert case.lesions and set(np.unique(sitk.GetArrayViewFromImage(case.labels))) <= set(range(6))

"""Breast MRI phantom: reproducible, anatomy in plausible places, contrasts as documented, grounded in the real crop."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.breast.phantom import (
    REAL_CROP,
    PhantomConfig,
    Tissue,
    generate_phantom,
    measure_crop_statistics,
    study_geometry,
)
from SlicerMedFuse.errors import UsageError

GRID = study_geometry(96, 20, (3.5, 3.5, 3.0))
CONFIG = PhantomConfig(masses=(2, 2), mass_diameter_mm=(12.0, 25.0), foci=(3, 3))


@pytest.fixture(scope="module")
def phantom():
    return generate_phantom(11, GRID, CONFIG)


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def test_same_seed_same_study_other_seed_other_study():
    small = study_geometry(48, 8, (7.0, 7.0, 6.0))
    a, b = generate_phantom(3, small), generate_phantom(3, small)
    for name in ("t1c", "t2w", "pre"):
        assert np.array_equal(_array(a.images[name]), _array(b.images[name]))
    assert np.array_equal(_array(a.mass), _array(b.mass)) and a.masses == b.masses
    assert not np.array_equal(_array(a.images["t1c"]), _array(generate_phantom(4, small).images["t1c"]))
    # rendering fewer sequences does not change the others
    only = generate_phantom(3, small, sequences=("t1c",))
    assert list(only.images) == ["t1c"] and np.array_equal(_array(only.images["t1c"]), _array(a.images["t1c"]))


def test_images_share_the_grid_and_the_mask_is_the_mass_tissue(phantom):
    for image in (*phantom.images.values(), phantom.mass, phantom.tissue):
        assert image.GetSize() == GRID.GetSize() and image.GetSpacing() == GRID.GetSpacing()
        assert image.GetOrigin() == GRID.GetOrigin()
    assert phantom.mass.GetPixelID() == sitk.sitkUInt8 and phantom.images["t1c"].GetPixelID() == sitk.sitkFloat32
    tissue, mass = _array(phantom.tissue), _array(phantom.mass)
    assert np.array_equal(mass == 1, tissue == Tissue.MASS) and set(np.unique(mass)) == {0, 1}
    assert len(phantom.masses) == 2 and all(m.volume_mm3 > 0 for m in phantom.masses)
    assert mass.sum() * np.prod(GRID.GetSpacing()) == pytest.approx(sum(m.volume_mm3 for m in phantom.masses))


def test_tissues_lie_in_plausible_places(phantom):
    tissue = _array(phantom.tissue)
    rows = np.arange(tissue.shape[1])[None, :, None]  # y grows posteriorly (LPS)
    mean_row = {t: float(np.broadcast_to(rows, tissue.shape)[tissue == t].mean()) for t in (Tissue.FAT, Tissue.HEART)}
    assert mean_row[Tissue.FAT] < mean_row[Tissue.HEART]  # breasts anterior, heart in the thorax
    for value in (Tissue.AIR, Tissue.FAT, Tissue.GLANDULAR, Tissue.ENHANCING_FOCUS, Tissue.MASS, Tissue.HEART):
        assert (tissue == value).any(), value
    # masses and enhancing foci grow inside the breasts: their neighbours are breast tissue, not muscle or lung
    breast = np.isin(tissue, (Tissue.FAT, Tissue.GLANDULAR, Tissue.ENHANCING_FOCUS, Tissue.MASS, Tissue.SKIN))
    lesion = np.isin(tissue, (Tissue.MASS, Tissue.ENHANCING_FOCUS))
    grown = sitk.GetArrayFromImage(sitk.BinaryDilate(sitk.GetImageFromArray(lesion.astype(np.uint8)), [1, 1, 1]))
    ring = (grown > 0) & ~lesion
    assert breast[ring].mean() > 0.95


def test_contrasts_make_t2w_tell_enhancing_tissue_from_masses(phantom):
    tissue = _array(phantom.tissue)
    means = {name: {t: float(_array(image)[tissue == t].mean()) for t in range(Tissue.COUNT) if (tissue == t).any()}
             for name, image in phantom.images.items()}  # fmt: skip
    t1c, t2w, pre = means["t1c"], means["t2w"], means["pre"]
    # T1C: masses at the real crop's lesion level, glandular at its background level, foci as bright as masses
    assert t1c[Tissue.MASS] == pytest.approx(REAL_CROP.lesion_median, rel=0.2)
    assert t1c[Tissue.GLANDULAR] == pytest.approx(REAL_CROP.background_median, rel=0.25)
    assert abs(t1c[Tissue.ENHANCING_FOCUS] - t1c[Tissue.MASS]) < 20
    assert t1c[Tissue.HEART] > t1c[Tissue.MASS] > t1c[Tissue.FAT] + 60
    # T2W: foci fluid-bright, masses like glandular tissue
    assert t2w[Tissue.ENHANCING_FOCUS] - t2w[Tissue.MASS] > 60
    assert abs(t2w[Tissue.MASS] - t2w[Tissue.GLANDULAR]) < 20
    # pre-contrast: the subtraction shows the enhancement of masses, foci and heart only
    assert t1c[Tissue.MASS] - pre[Tissue.MASS] > 50 and t1c[Tissue.HEART] - pre[Tissue.HEART] > 50
    assert abs(t1c[Tissue.GLANDULAR] - pre[Tissue.GLANDULAR]) < 15
    for image in phantom.images.values():  # magnitude images on the crop's 8-bit-like scale
        values = _array(image)
        assert values.min() >= 0 and np.percentile(values, 99.9) < 260


def test_real_crop_statistics_are_the_documented_ones(shared_data):
    folder = shared_data / "breast_mri"
    measured = measure_crop_statistics(
        sitk.ReadImage(str(folder / "pyradiomics_breast1_image.nrrd")),
        sitk.ReadImage(str(folder / "pyradiomics_breast1_label.nrrd")),
    )
    assert measured.spacing_mm == pytest.approx(REAL_CROP.spacing_mm, abs=1e-5)
    for name in ("background_median", "background_sigma", "background_p95", "lesion_median", "lesion_relative_std"):
        assert getattr(measured, name) == pytest.approx(getattr(REAL_CROP, name), rel=0.01), name
    assert measured.lesion_volume_mm3 == pytest.approx(REAL_CROP.lesion_volume_mm3, rel=0.01)
    assert PhantomConfig().mass_diameter_mm[0] == pytest.approx(REAL_CROP.lesion_diameter_mm, abs=0.5)


def test_bad_settings_are_refused():
    with pytest.raises(UsageError, match="mass_diameter_mm"):
        PhantomConfig(mass_diameter_mm=(10.0, 5.0))
    with pytest.raises(UsageError, match="sequences"):
        generate_phantom(0, study_geometry(32, 4), sequences=("flair",))
    with pytest.raises(UsageError, match="at least 16"):
        study_geometry(8, 4)

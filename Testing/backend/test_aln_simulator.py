"""The ALN-status simulator: reproducible by seed, labels follow the stated logistic model, features rendered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.breast.aln_clinical import CLINICAL_FIELDS, check_clinical
from SlicerMedFuse.breast.aln_simulator import AlnRiskModel, render_case, sample_case, simulated_study


def test_cases_are_reproducible_by_seed_and_clinically_valid():
    assert sample_case(11) == sample_case(11)
    assert sample_case(11) != sample_case(12)
    for seed in range(200):
        case = sample_case(seed)
        assert check_clinical(case.clinical) == case.clinical  # every field present and in range
        assert list(case.clinical) == [field.name for field in CLINICAL_FIELDS]
        assert abs(case.clinical["tumour_size_mm"] - case.diameter_mm) < 8.0


def _fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> np.ndarray:
    """Maximum-likelihood logistic regression (Newton / IRLS), intercept first."""
    design = np.hstack([np.ones((len(x), 1)), x])
    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        hessian = design.T @ (design * (p * (1 - p))[:, None])
        beta += np.linalg.solve(hessian, design.T @ (y - p))
    return beta


def test_labels_follow_the_stated_logistic_model():
    model = AlnRiskModel()
    cases = [sample_case(seed, model) for seed in range(4000)]
    y = np.array([c.positive for c in cases], dtype=float)
    x = model.covariates(
        [c.diameter_mm for c in cases],
        [c.clinical["grade"] for c in cases],
        [c.clinical["ki67_percent"] for c in cases],
        [c.rim for c in cases],
        [c.oedema for c in cases],
    )
    beta = _fit_logistic(x, y)
    expected = np.concatenate([[model.intercept], model.coefficients])
    np.testing.assert_allclose(beta, expected, atol=0.3)  # ~3 standard errors at 4000 cases
    assert 0.3 < y.mean() < 0.45  # about 4 in 10 positive, as documented
    # the image features do not depend on the clinical fields (they carry what the fields do not)
    rim = np.array([c.rim for c in cases])
    grade = np.array([c.clinical["grade"] for c in cases])
    assert abs(np.corrcoef(rim, grade)[0, 1]) < 0.06


def test_rendering_is_reproducible_and_carries_rim_and_oedema():
    base = dataclasses.replace(sample_case(1), rim=0.0, oedema=0.0, diameter_mm=26.0)
    plain = render_case(base)
    again = render_case(base)
    for role in ("dce", "t2w"):
        np.testing.assert_array_equal(
            sitk.GetArrayViewFromImage(plain.images[role]), sitk.GetArrayViewFromImage(again.images[role])
        )
        assert plain.images[role].GetSize() == (40, 40, 40)
        assert plain.images[role].GetPixelID() == sitk.sitkInt16
    mass = sitk.GetArrayViewFromImage(plain.mass) > 0
    assert mass.sum() > 100
    assert tuple(np.round(np.argwhere(mass).mean(axis=0))) == pytest.approx((20, 20, 20), abs=2)  # cube centred

    rim = render_case(dataclasses.replace(base, rim=1.0))
    oedema = render_case(dataclasses.replace(base, oedema=1.0))
    dce = {name: sitk.GetArrayFromImage(s.images["dce"]).astype(float) for name, s in (("plain", plain), ("rim", rim))}
    core = sitk.GetArrayFromImage(sitk.BinaryErode(plain.mass, [3, 3, 3])) > 0
    assert dce["plain"][core].mean() - dce["rim"][core].mean() > 40  # the core loses its enhancement
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(oedema.images["dce"]), dce["plain"])  # T2W only
    ring = (sitk.GetArrayFromImage(sitk.BinaryDilate(plain.mass, [2, 2, 2])) > 0) & ~mass
    t2w_plain = sitk.GetArrayFromImage(plain.images["t2w"]).astype(float)
    t2w_oedema = sitk.GetArrayFromImage(oedema.images["t2w"]).astype(float)
    assert t2w_oedema[ring].mean() - t2w_plain[ring].mean() > 20
    assert simulated_study(1).case == sample_case(1)

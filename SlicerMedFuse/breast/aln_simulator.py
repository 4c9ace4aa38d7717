"""A documented simulator of axillary lymph node (ALN) status on top of the breast phantom.

No breast MRI with ALN status can be reached from this project, so the ``aln-metastasis`` demo
model, its tests and its benchmark use simulated cases. **A model trained on them demonstrates the
pipeline only; it is not for clinical use.** Each case is drawn in three steps from one seed:

1. **Clinical fields** (:func:`sample_case`), plausible for women with invasive breast cancer
   (rough literature-shaped choices, not fitted to any cohort): age ~ N(56, 12) years in [25, 90];
   post-menopausal with probability sigmoid((age - 50) / 2.5); family history 15 %; hormone
   therapy 25 % after menopause, 5 % before; true diameter ~ lognormal (median 18 mm, sigma 0.3)
   in [10, 32] mm, reported size = diameter + N(0, 1.5 mm); grade 1/2/3 with 20/45/35 %; Ki-67 ~
   N(10, 5) / N(20, 8) / N(40, 15) % by grade in [1, 95]; ER positive with 90/80/55 % by grade
   (10-100 % of nuclei, else 0-1 %); PgR positive in 75 % of ER-positive and 5 % of ER-negative
   tumours; HER2 positive 15 % (25 % in grade 3).
2. **Image features the clinical fields do not carry**, drawn independently of them:
   ``rim`` (rim enhancement with a non-enhancing core, 0..1; present in 35 % of cases with
   strength U(0.5, 1)) rendered into the DCE, and ``oedema`` (peritumoral oedema, 0..1; present
   in 30 % with strength U(0.5, 1)) rendered into the T2W. Both are reported associations of
   ALN metastasis in the breast-MRI literature; their strengths here are invented.
3. **ALN status** ~ Bernoulli(p) with the stated logistic model (:class:`AlnRiskModel`)::

       logit p = -1.6 + 0.8 (diameter - 20 mm) / 10 mm + 0.6 (grade - 2)
                 + 0.5 (Ki-67 - 25 %) / 20 % + 2.0 rim + 1.5 oedema

   so about 4 in 10 cases are positive; size, grade and Ki-67 reach the network through the
   clinical branch (size also through the image), rim only through the DCE and oedema only
   through the T2W.

Rendering (:func:`render_case`): a one-breast phantom (:func:`~SlicerMedFuse.breast.phantom.generate_phantom`,
2 mm voxels, exactly one mass of the drawn diameter); then, in the phantom's T1C (the DCE), the
mass core deeper than ``max(1.5 mm, radius / 4)`` (over a 1.5 mm ramp) loses ``70 * rim`` of its
enhancement (130 -> 60, the glandular level, at rim = 1; small masses show a small core); in the T2W, fat and glandular tissue within ~10 mm outside the
mass gain ``90 * oedema * exp(-distance / 4 mm)`` (fluid-bright). The study is cut to a cube of
40 voxels (80 mm) around the mass and stored as int16, like scanner magnitudes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.phantom import PhantomConfig, Tissue, generate_phantom

__all__ = [
    "ALN_SIMULATION_NOTE",
    "AlnRiskModel",
    "SimulatedAlnCase",
    "SimulatedAlnStudy",
    "render_case",
    "sample_case",
    "simulated_study",
]

#: What the bundle and the report say about a model trained on these cases.
ALN_SIMULATION_NOTE = (
    "trained on breast phantoms with a simulated ALN status — demonstrates the pipeline only; not for clinical use"
)

#: Phantom grid: one breast (LPS x 0..158 mm, y -50..54 mm, z -40..38 mm) at 2 mm.
_GRID_SIZE = (80, 53, 40)
_GRID_ORIGIN = (0.0, -50.0, -40.0)
_GRID_SPACING = 2.0
#: Side of the stored cube around the mass (voxels of 2 mm).
STUDY_VOXELS = 40
#: Enhancement a fully necrotic core loses in the DCE (T1C mass 130 -> glandular 60).
RIM_DROP = 70.0
#: Signal oedema adds in the T2W next to the mass (fat 30 / glandular 90 -> fluid-like).
OEDEMA_RISE = 90.0
OEDEMA_DECAY_MM = 4.0
OEDEMA_REACH_MM = 10.0


@dataclasses.dataclass(frozen=True)
class AlnRiskModel:
    """The stated logistic model of ALN status (coefficients on the logit scale)."""

    intercept: float = -1.6
    per_10mm_diameter: float = 0.8  # centred at 20 mm
    per_grade: float = 0.6  # centred at grade 2
    per_20_ki67: float = 0.5  # centred at 25 %
    rim: float = 2.0
    oedema: float = 1.5

    def covariates(self, diameter_mm, grade, ki67, rim, oedema) -> np.ndarray:
        """``(N, 5)`` centred, scaled covariates in coefficient order."""
        return np.stack(
            [
                (np.asarray(diameter_mm, float) - 20.0) / 10.0,
                np.asarray(grade, float) - 2.0,
                (np.asarray(ki67, float) - 25.0) / 20.0,
                np.asarray(rim, float),
                np.asarray(oedema, float),
            ],
            axis=-1,
        )

    @property
    def coefficients(self) -> np.ndarray:
        return np.array([self.per_10mm_diameter, self.per_grade, self.per_20_ki67, self.rim, self.oedema])

    def probability(self, diameter_mm, grade, ki67, rim, oedema) -> np.ndarray:
        logit = self.intercept + self.covariates(diameter_mm, grade, ki67, rim, oedema) @ self.coefficients
        return 1.0 / (1.0 + np.exp(-logit))


@dataclasses.dataclass(frozen=True)
class SimulatedAlnCase:
    """One simulated patient.

    Attributes:
        seed: The seed the case (and its images) come from.
        clinical: The ten clinical fields (:data:`~SlicerMedFuse.breast.aln_clinical.CLINICAL_FIELDS`).
        diameter_mm: True tumour diameter rendered into the images.
        rim: Rim-enhancement strength (0..1, DCE only).
        oedema: Peritumoral-oedema strength (0..1, T2W only).
        probability: ALN-positive probability under the risk model.
        positive: The drawn ALN status.
    """

    seed: int
    clinical: dict[str, float]
    diameter_mm: float
    rim: float
    oedema: float
    probability: float
    positive: bool

    def row(self) -> dict[str, Any]:
        """A CSV row: the clinical fields, the label ``aln`` and the simulator's hidden variables."""
        return {
            **self.clinical,
            "aln": int(self.positive),
            "sim_probability": round(self.probability, 4),
            "sim_diameter_mm": round(self.diameter_mm, 2),
            "sim_rim": round(self.rim, 3),
            "sim_oedema": round(self.oedema, 3),
        }


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _present(rng: np.random.Generator, share: float) -> float:
    return float(rng.uniform(0.5, 1.0)) if rng.random() < share else 0.0


def sample_case(seed: int, model: AlnRiskModel | None = None) -> SimulatedAlnCase:
    """Draw one case's clinical fields, hidden image features and ALN status (no images; cheap)."""
    model = model or AlnRiskModel()
    rng = np.random.default_rng([seed, 7])  # independent of the phantom's own stream (seeded by ``seed``)
    age = float(_clamp(round(rng.normal(56.0, 12.0)), 25, 90))
    menopause = float(rng.random() < 1.0 / (1.0 + np.exp(-(age - 50.0) / 2.5)))
    family = float(rng.random() < 0.15)
    hormone = float(rng.random() < (0.25 if menopause else 0.05))
    diameter = _clamp(float(np.exp(rng.normal(np.log(18.0), 0.3))), 10.0, 32.0)
    size = float(_clamp(round(diameter + rng.normal(0.0, 1.5)), 1.0, 200.0))
    grade = int(rng.choice([1, 2, 3], p=[0.2, 0.45, 0.35]))
    ki67 = float(_clamp(round(rng.normal(*{1: (10.0, 5.0), 2: (20.0, 8.0), 3: (40.0, 15.0)}[grade]), 1), 1.0, 95.0))
    er_positive = rng.random() < {1: 0.9, 2: 0.8, 3: 0.55}[grade]
    er = float(round(rng.uniform(10.0, 100.0) if er_positive else rng.uniform(0.0, 1.0)))
    pgr_positive = rng.random() < (0.75 if er_positive else 0.05)
    pgr = float(round(rng.uniform(5.0, 100.0) if pgr_positive else rng.uniform(0.0, 1.0)))
    her2 = float(rng.random() < (0.25 if grade == 3 else 0.15))
    rim, oedema = _present(rng, 0.35), _present(rng, 0.30)
    probability = float(model.probability(diameter, grade, ki67, rim, oedema))
    clinical = {
        "age": age,
        "family_history": family,
        "hormone_therapy": hormone,
        "menopause": menopause,
        "tumour_size_mm": size,
        "er_percent": er,
        "pgr_percent": pgr,
        "ki67_percent": ki67,
        "her2": her2,
        "grade": float(grade),
    }
    positive = bool(rng.random() < probability)
    return SimulatedAlnCase(int(seed), clinical, diameter, rim, oedema, probability, positive)


@dataclasses.dataclass(frozen=True)
class SimulatedAlnStudy:
    """A rendered case: ``dce`` and ``t2w`` (int16) and the ``mass`` label (uint8), one 80 mm cube."""

    case: SimulatedAlnCase
    images: dict[str, sitk.Image]
    mass: sitk.Image


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _cut(image: sitk.Image, centre_index: np.ndarray) -> sitk.Image:
    """The :data:`STUDY_VOXELS` cube of ``image`` around a voxel (zero-padded where it leaves the image)."""
    half = STUDY_VOXELS // 2
    low = [int(max(0, half - c)) for c in centre_index]
    high = [int(max(0, c + half - n)) for c, n in zip(centre_index, image.GetSize(), strict=True)]
    padded = sitk.ConstantPad(image, low, high, 0)
    start = [int(c - half + p) for c, p in zip(centre_index, low, strict=True)]
    return sitk.RegionOfInterest(padded, [STUDY_VOXELS] * 3, start)


def render_case(case: SimulatedAlnCase) -> SimulatedAlnStudy:
    """Render a case's DCE (with its rim) and T2W (with its oedema) and cut them around the mass."""
    grid = sitk.Image(list(_GRID_SIZE), sitk.sitkFloat32)
    grid.SetSpacing([_GRID_SPACING] * 3)
    grid.SetOrigin(_GRID_ORIGIN)
    config = PhantomConfig(masses=(1, 1), mass_diameter_mm=(case.diameter_mm, case.diameter_mm))
    phantom = generate_phantom(case.seed, grid, config, sequences=("t1c", "t2w"))
    distance = sitk.GetArrayFromImage(
        sitk.SignedMaurerDistanceMap(phantom.mass, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    )
    tissue = sitk.GetArrayViewFromImage(phantom.tissue)
    radius = case.diameter_mm / 2.0
    core = _smoothstep((distance - max(1.5, 0.25 * radius)) / 1.5) * (distance > 0)
    dce = np.clip(sitk.GetArrayFromImage(phantom.images["t1c"]) - RIM_DROP * case.rim * core, 0.0, None)
    outside = -distance
    halo = np.exp(-outside / OEDEMA_DECAY_MM) * (outside > 0) * (outside <= OEDEMA_REACH_MM)
    halo *= (tissue == Tissue.FAT) | (tissue == Tissue.GLANDULAR)
    t2w = sitk.GetArrayFromImage(phantom.images["t2w"]) + OEDEMA_RISE * case.oedema * halo
    mass_array = sitk.GetArrayViewFromImage(phantom.mass)
    centre_index = np.round(np.argwhere(mass_array > 0).mean(axis=0)[::-1]).astype(int)  # x, y, z
    images = {}
    for role, array in (("dce", dce), ("t2w", t2w)):
        image = sitk.GetImageFromArray(np.round(array).astype(np.int16))
        image.CopyInformation(grid)
        images[role] = _cut(image, centre_index)
    return SimulatedAlnStudy(case, images, _cut(phantom.mass, centre_index))


def simulated_study(seed: int, model: AlnRiskModel | None = None) -> SimulatedAlnStudy:
    """Sample and render case ``seed``."""
    return render_case(sample_case(seed, model))

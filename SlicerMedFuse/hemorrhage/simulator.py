"""Paint anatomically plausible intracranial hemorrhages into a real head CT, with exact labels.

No labelled hemorrhage CT can be reached from this project, so the demo model, the end-to-end
tests and the benchmark use bleeds simulated in a real normal head CT (issue 5, section 2).
:func:`simulate_hemorrhage` takes any head CT in HU and returns the CT with bleeds painted in,
the exact BHSD label map (uint8, 0..5) and the volume of each class in mL. The same seed gives
the same case; everything random comes from one ``numpy.random.Generator``.

Per bleed (shapes in :mod:`SlicerMedFuse.hemorrhage.lesions`):

1. A site is drawn from the CT's own anatomy (:mod:`SlicerMedFuse.hemorrhage.anatomy`).
2. Optional **mass effect**: tissue around the bleed is pushed away by a smooth displacement
   (at most ``max_displacement_mm`` at the bleed surface, decaying with ``displacement_decay_mm``,
   zero at the skull); the CT, the labels painted so far and the anatomy are warped alike.
3. **Partial volume**: weight ``w = clip(0.5 + d / partial_volume_mm, 0, 1)`` from the signed
   distance ``d`` to the bleed surface; the label is exactly ``w >= 0.5``.
4. **Blood**: ``(1 - w) * CT + w * (mean + texture) + sqrt(1 - (1 - w)^2) * noise``, with a mean
   drawn from ``blood_hu`` (acute blood, 50-90 HU), a smooth low-amplitude texture and noise
   matching the CT's own standard deviation and correlation (so noise is neither removed nor
   doubled). IPH may get a hypodense perihematomal edema rim (not labelled, as in BHSD).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage import _morphology as morph
from SlicerMedFuse.hemorrhage.anatomy import HeadAnatomy, analyze_head_ct
from SlicerMedFuse.hemorrhage.labels import HemorrhageClass, class_from_name
from SlicerMedFuse.hemorrhage.lesions import SHAPERS, AnatomyState, LesionShape

__all__ = ["Lesion", "NoiseModel", "SimulatedCase", "SimulationConfig", "estimate_noise", "simulate_hemorrhage"]

_MASS_EFFECT_CLASSES = (HemorrhageClass.EDH, HemorrhageClass.SDH, HemorrhageClass.IPH)
_PAINT_ORDER = (HemorrhageClass.EDH, HemorrhageClass.SDH, HemorrhageClass.IPH, HemorrhageClass.IVH, HemorrhageClass.SAH)


def _default_mix() -> dict[str, float]:
    return {"EDH": 0.25, "IPH": 0.6, "IVH": 0.35, "SAH": 0.45, "SDH": 0.45}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """How many bleeds of which size, density and texture (mm, mL, HU).

    Attributes:
        class_probability: Chance that each class appears when ``classes`` is not given (at
            least one class is always painted).
        blood_hu: Range of the mean density of a bleed (HU).
        iph_volume_ml: IPH volume range (mL).
        iph_irregularity: Amplitude of the IPH surface noise (0 = smooth ellipsoid).
        iph_edema_probability: Chance of a perihematomal edema rim around an IPH.
        iph_edema_mm: Edema rim width range (mm).
        iph_edema_hu: Edema density drop range (HU).
        edh_thickness_mm: Maximal EDH thickness range (mm).
        edh_diameter_mm: EDH diameter range along the skull (mm).
        sdh_thickness_mm: Maximal SDH thickness range (mm).
        sdh_extent_mm: SDH extent range along the convexity (mm).
        ivh_fraction: Fraction of the chosen ventricles' volume filled by layering blood.
        ivh_bilateral_probability: Chance that IVH layers in both lateral ventricles.
        sah_radius_mm: Radius range (mm) of the region whose CSF fills with blood.
        sah_cistern_probability: Chance that SAH sits in the basal cisterns instead of the sulci.
        partial_volume_mm: Width (mm) of the partial-volume blend at bleed edges.
        texture_hu: Standard deviation (HU) of the smooth density variation inside a bleed.
        noise: Add noise matched to the CT inside the bleeds.
        mass_effect: Push the surrounding tissue away from EDH, SDH and IPH.
        max_displacement_mm: Largest tissue displacement (mm).
        displacement_decay_mm: Decay length (mm) of the displacement away from the bleed.
        gravity_lps: Direction blood settles in (LPS); supine patient: posterior, ``(0, 1, 0)``.
        max_attempts: Sites tried per bleed before it is skipped (too small where it landed).
        min_volume_ml: Smallest accepted bleed (mL).
    """

    class_probability: Mapping[str, float] = dataclasses.field(default_factory=_default_mix)
    blood_hu: tuple[float, float] = (50.0, 90.0)
    iph_volume_ml: tuple[float, float] = (3.0, 30.0)
    iph_irregularity: float = 0.4
    iph_edema_probability: float = 0.6
    iph_edema_mm: tuple[float, float] = (2.0, 6.0)
    iph_edema_hu: tuple[float, float] = (5.0, 12.0)
    edh_thickness_mm: tuple[float, float] = (8.0, 18.0)
    edh_diameter_mm: tuple[float, float] = (40.0, 70.0)
    sdh_thickness_mm: tuple[float, float] = (4.0, 10.0)
    sdh_extent_mm: tuple[float, float] = (80.0, 140.0)
    ivh_fraction: tuple[float, float] = (0.1, 0.35)
    ivh_bilateral_probability: float = 0.4
    sah_radius_mm: tuple[float, float] = (25.0, 50.0)
    sah_cistern_probability: float = 0.35
    partial_volume_mm: float = 1.2
    texture_hu: float = 2.5
    noise: bool = True
    mass_effect: bool = True
    max_displacement_mm: float = 4.0
    displacement_decay_mm: float = 10.0
    gravity_lps: tuple[float, float, float] = (0.0, 1.0, 0.0)
    max_attempts: int = 8
    min_volume_ml: float = 0.2

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith(("_hu", "_mm", "_ml", "_fraction")) and isinstance(value, tuple):
                if len(value) != 2 or value[0] > value[1] or (value[0] < 0 and field.name != "blood_hu"):
                    raise UsageError(f"Simulation setting '{field.name}' needs a range (low, high) with low <= high.")
        for name, probability in self.class_probability.items():
            try:
                class_from_name(name)
            except ValueError as error:
                raise UsageError(f"Simulation setting 'class_probability': {error}.") from None
            if not 0.0 <= float(probability) <= 1.0:
                raise UsageError(
                    f"Simulation setting 'class_probability' for {name} must be in [0, 1]; got {probability}."
                )
        if self.partial_volume_mm <= 0 or self.displacement_decay_mm <= 0 or self.max_attempts < 1:
            raise UsageError(
                "Simulation settings partial_volume_mm, displacement_decay_mm and max_attempts must be > 0."
            )
        if not np.linalg.norm(self.gravity_lps) > 0:
            raise UsageError("Simulation setting 'gravity_lps' must be a non-zero direction.")


class Lesion(NamedTuple):
    """One painted bleed: class, placement point (LPS mm), labelled volume (mL), mean density (HU)."""

    cls: HemorrhageClass
    center_lps: tuple[float, float, float]
    volume_ml: float
    mean_hu: float


class SimulatedCase(NamedTuple):
    """The output of :func:`simulate_hemorrhage`.

    Attributes:
        image: The CT with bleeds; same size, spacing, origin, direction and pixel type as the input.
        labels: uint8 BHSD label map on the same grid (0 background, 1 EDH .. 5 SDH).
        volumes_ml: Labelled volume per class (mL), keys ``EDH IPH IVH SAH SDH`` (0 when absent).
        lesions: The painted bleeds, in painting order.
    """

    image: sitk.Image
    labels: sitk.Image
    volumes_ml: dict[str, float]
    lesions: tuple[Lesion, ...]


@dataclasses.dataclass(frozen=True)
class NoiseModel:
    """Stationary CT noise: standard deviation (HU) and Gaussian correlation width per axis (voxels, z y x)."""

    sigma_hu: float
    correlation_voxels: tuple[float, float, float]

    def sample(self, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """Correlated Gaussian noise of this model, ``shape`` ``(z, y, x)``, float32."""
        white = rng.standard_normal(tuple(shape), dtype=np.float32)
        if max(self.correlation_voxels) > 0.05:
            variance = [float(v) ** 2 for v in reversed(self.correlation_voxels)]
            image = sitk.DiscreteGaussian(sitk.GetImageFromArray(white), variance, 16, 0.01, False)
            white = sitk.GetArrayFromImage(image)
            white /= max(float(white.std()), 1e-6)  # blurring lowers the variance; restore unit std
        return (self.sigma_hu * white).astype(np.float32)


def estimate_noise(ct: sitk.Image, anatomy: HeadAnatomy) -> NoiseModel:
    """Noise of a head CT from homogeneous deep brain parenchyma.

    The residual of a 1.5 mm Gaussian smoothing gives the standard deviation (robust: MAD) and
    the lag-1 correlation along each axis; white noise blurred with a Gaussian of ``c`` voxels has
    lag-1 correlation ``exp(-1 / (4 c^2))``, which is inverted for ``c``.
    """
    region = anatomy.brain & (anatomy.depth_mm >= 10.0) & ~anatomy.ventricles
    if np.count_nonzero(region) < 1000:
        return NoiseModel(5.0, (0.0, 0.0, 0.0))
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    residual = hu - morph.smooth_mm(hu, 1.5, anatomy.spacing_zyx)
    values = residual[region]
    sigma = float(1.4826 * np.median(np.abs(values - np.median(values))))
    widths = []
    for axis in range(3):
        lead = [slice(None)] * 3
        lag = [slice(None)] * 3
        lead[axis], lag[axis] = slice(1, None), slice(None, -1)
        both = region[tuple(lead)] & region[tuple(lag)]
        a, b = residual[tuple(lead)][both], residual[tuple(lag)][both]
        rho = float(np.corrcoef(a, b)[0, 1]) if a.size > 100 else 0.0
        widths.append(float(np.sqrt(-1.0 / (4.0 * np.log(rho)))) if 0.02 < rho < 0.98 else 0.0)
    return NoiseModel(max(sigma, 0.5), tuple(widths))


def simulate_hemorrhage(
    ct: sitk.Image,
    classes: Sequence[str | int | HemorrhageClass] | None = None,
    seed: int = 0,
    config: SimulationConfig | None = None,
    anatomy: HeadAnatomy | None = None,
) -> SimulatedCase:
    """Paint bleeds of the given classes into a head CT.

    Args:
        ct: Head CT in HU (3-D; any pixel type, orientation and spacing). Not modified.
        classes: Classes to paint, one bleed each (``"EDH"``, ``"IPH"``, ``2``, ...); None draws a
            random mix from ``config.class_probability``.
        seed: Seed of the random generator; the same seed, CT and config give the same case.
        config: Sizes, densities and effects; defaults when None.
        anatomy: The CT's :func:`~SlicerMedFuse.hemorrhage.anatomy.analyze_head_ct` result, to
            reuse across seeds; derived when None.

    Returns:
        A :class:`SimulatedCase` (image, uint8 labels, per-class volumes in mL, lesions).

    Raises:
        InputError: If the CT shows no head (see :func:`analyze_head_ct`).
        UsageError: For an unknown class name or invalid settings.
    """
    cfg = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    wanted = _resolve_classes(classes, cfg, rng)
    anatomy = anatomy if anatomy is not None else analyze_head_ct(ct)
    if anatomy.icv.shape != tuple(reversed(ct.GetSize())):
        raise InputError("The anatomy given was derived from another image; analyse this CT or pass anatomy=None.")
    noise = estimate_noise(ct, anatomy) if cfg.noise else None

    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    state = AnatomyState(
        reference=ct,
        icv=anatomy.icv.copy(),
        brain=anatomy.brain.copy(),
        ventricles=anatomy.ventricles.copy(),
        sulci=anatomy.sulci.copy(),
        cisterns=anatomy.cisterns.copy(),
        convexity=anatomy.convexity.copy(),
        depth_mm=anatomy.depth_mm.copy(),
        midline_x=anatomy.midline_lps[0],
        occupied=np.zeros(hu.shape, bool),
    )
    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    lesions = []
    for cls in (c for c in _PAINT_ORDER if c in wanted):
        shape, weight = _place(cls, state, rng, cfg, voxel_ml)
        if shape is None:
            continue
        if cfg.mass_effect and cls in _MASS_EFFECT_CLASSES and shape.push_direction is not None:
            hu, labels = _push_tissue(shape, state, hu, labels, cfg)
        if cls == HemorrhageClass.IPH and rng.random() < cfg.iph_edema_probability:
            _add_edema(shape, state, hu, rng, cfg)
        mean_hu = float(rng.uniform(*cfg.blood_hu))
        _paint_blood(shape.box, weight, mean_hu, hu, state.spacing_zyx, noise, rng, cfg)
        labels[shape.box][weight >= 0.5] = int(cls)
        state.occupied[shape.box] |= weight > 0.0
        lesions.append(Lesion(cls, shape.center_lps, float(np.count_nonzero(weight >= 0.5)) * voxel_ml, mean_hu))

    counts = np.bincount(labels.ravel(), minlength=6)
    volumes = {c.name: float(counts[c]) * voxel_ml for c in HemorrhageClass if c}
    lesions = tuple(lesion._replace(volume_ml=volumes[lesion.cls.name]) for lesion in lesions)
    return SimulatedCase(_to_image(hu, ct), _to_label_image(labels, ct), volumes, lesions)


def _resolve_classes(
    classes: Sequence[str | int | HemorrhageClass] | None, cfg: SimulationConfig, rng: np.random.Generator
) -> set[HemorrhageClass]:
    if classes is not None:
        try:
            wanted = {class_from_name(c) for c in classes}
        except ValueError as error:
            raise UsageError(f"{error}.") from None
        if HemorrhageClass.BACKGROUND in wanted:
            raise UsageError("Background (0) is not a hemorrhage class; give EDH, IPH, IVH, SAH or SDH.")
        return wanted
    mix = {class_from_name(name): float(p) for name, p in cfg.class_probability.items()}
    order = sorted(mix)
    draws = rng.random(len(order))
    wanted = {c for c, u in zip(order, draws, strict=True) if u < mix[c]}
    if not wanted:
        weights = np.asarray([mix[c] for c in order]) + 1e-9
        wanted = {order[int(rng.choice(len(order), p=weights / weights.sum()))]}
    return wanted


def _place(
    cls: HemorrhageClass, state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig, voxel_ml: float
) -> tuple[LesionShape | None, np.ndarray]:
    """Try sites until the bleed is at least ``min_volume_ml``; return its shape and weight."""
    for _ in range(cfg.max_attempts):
        shape = SHAPERS[cls](state, rng, cfg)
        if shape is None:
            break
        weight = np.clip(0.5 + shape.signed_distance_mm / cfg.partial_volume_mm, 0.0, 1.0) * shape.allowed
        if np.count_nonzero(weight >= 0.5) * voxel_ml >= cfg.min_volume_ml:
            return shape, weight.astype(np.float32)
    return None, np.zeros(0, np.float32)


def _push_tissue(
    shape: LesionShape, state: AnatomyState, hu: np.ndarray, labels: np.ndarray, cfg: SimulationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Warp the CT, labels and anatomy in the bleed's box so tissue moves away from the bleed.

    Tissue at distance ``s`` outside the bleed moves ``m * exp(-s / decay)`` along the push
    direction (``m`` capped by ``max_displacement_mm``), tapered to zero at the skull and at the
    box faces so the box pastes back seamlessly.
    """
    box, sp = shape.box, state.spacing_zyx
    outside = np.maximum(-shape.signed_distance_mm, 0.0)
    magnitude = min(shape.push_mm, cfg.max_displacement_mm) * np.exp(-outside / cfg.displacement_decay_mm)
    # Never sample across the skull: move at most half the distance to the inner table.
    magnitude = np.minimum(magnitude, 0.5 * np.maximum(state.depth_mm[box] - min(sp), 0.0))
    magnitude *= _face_taper(outside.shape, sp, 8.0)
    displacement = -(shape.push_direction * magnitude[None])  # output(p) = input(p - u(p))
    start = (box[2].start, box[1].start, box[0].start)
    origin = state.reference.TransformIndexToPhysicalPoint(start)

    def warp(array: np.ndarray, interpolator: int) -> np.ndarray:
        image = sitk.GetImageFromArray(array)
        image.SetOrigin(origin)
        image.SetSpacing(state.reference.GetSpacing())
        image.SetDirection(state.reference.GetDirection())
        field = sitk.GetImageFromArray(np.moveaxis(displacement, 0, -1).astype(np.float64), isVector=True)
        field.CopyInformation(image)
        transform = sitk.DisplacementFieldTransform(field)
        return sitk.GetArrayFromImage(sitk.Resample(image, image, transform, interpolator, 0.0))

    hu[box] = warp(hu[box], sitk.sitkLinear)
    labels[box] = warp(labels[box], sitk.sitkNearestNeighbor)
    state.occupied[box] = labels[box] > 0
    # Tissue compartments move with the tissue; the cavity, its depth map and the inner table
    # belong to the skull and stay.
    packed = np.zeros(outside.shape, np.uint8)
    masks = ("brain", "ventricles", "sulci", "cisterns")
    for bit, name in enumerate(masks):
        packed |= getattr(state, name)[box].astype(np.uint8) << bit
    packed = warp(packed, sitk.sitkNearestNeighbor)
    for bit, name in enumerate(masks):
        getattr(state, name)[box] = (packed >> bit) & 1 == 1
    return hu, labels


def _face_taper(shape: tuple[int, ...], spacing_zyx: tuple[float, float, float], width_mm: float) -> np.ndarray:
    """1 inside the box, falling smoothly to 0 over ``width_mm`` at its faces, ``(z, y, x)``."""
    taper = np.ones(shape, np.float32)
    for axis, (n, s) in enumerate(zip(shape, spacing_zyx, strict=True)):
        edge = np.minimum(np.arange(n), np.arange(n)[::-1]) * s
        ramp = np.clip(edge / width_mm, 0.0, 1.0)
        taper *= (ramp * ramp * (3 - 2 * ramp)).reshape([-1 if a == axis else 1 for a in range(3)])
    return taper


def _add_edema(
    shape: LesionShape, state: AnatomyState, hu: np.ndarray, rng: np.random.Generator, cfg: SimulationConfig
) -> None:
    """Lower the density of a parenchymal rim around an IPH (perihematomal edema, not labelled)."""
    width = float(rng.uniform(*cfg.iph_edema_mm))
    drop = float(rng.uniform(*cfg.iph_edema_hu))
    outside = -shape.signed_distance_mm
    rim = np.clip(1.0 - outside / width, 0.0, 1.0) * (outside > -cfg.partial_volume_mm)
    hu[shape.box] -= drop * rim * state.brain[shape.box]


def _paint_blood(
    box: tuple[slice, ...],
    weight: np.ndarray,
    mean_hu: float,
    hu: np.ndarray,
    spacing_zyx: tuple[float, float, float],
    noise: NoiseModel | None,
    rng: np.random.Generator,
    cfg: SimulationConfig,
) -> None:
    """Blend blood into ``hu[box]`` with partial-volume ``weight``, texture and matched noise."""
    inner = _nonzero_box(weight)
    if inner is None:
        return
    w = weight[inner]
    region = tuple(slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner, strict=True))
    blood = mean_hu + cfg.texture_hu * morph.smooth_noise(w.shape, 3.0, spacing_zyx, rng)
    painted = (1.0 - w) * hu[region] + w * blood
    if noise is not None:
        painted += np.sqrt(np.clip(1.0 - (1.0 - w) ** 2, 0.0, 1.0)) * noise.sample(w.shape, rng)
    hu[region] = painted


def _nonzero_box(weight: np.ndarray) -> tuple[slice, slice, slice] | None:
    if not np.any(weight > 0):
        return None
    box = []
    for axis in range(3):
        hit = np.flatnonzero(np.any(weight > 0, axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _to_image(hu: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """HU array -> image with the reference's geometry and pixel type (rounded and clipped for integers)."""
    dtype = sitk.GetArrayViewFromImage(reference).dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        hu = np.clip(np.rint(hu), info.min, info.max)
    image = sitk.GetImageFromArray(hu.astype(dtype))
    image.CopyInformation(reference)
    return image


def _to_label_image(labels: np.ndarray, reference: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(labels.astype(np.uint8))
    image.CopyInformation(reference)
    return image

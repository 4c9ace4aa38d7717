"""Vary the anatomy of a real head CT: atrophy, larger ventricles, physiological calcifications, head holder.

A model trained on bleeds painted into one head CT learns that patient's normal anatomy: on other
patients it calls calcified choroid plexus IVH and wide sulci or a head holder something else
(issue 15). :func:`vary_anatomy` changes the normal anatomy of the CT before bleeds are painted,
and nothing it adds is ever a bleed: the simulator's labels stay 0 there.

Everything is placed from the CT's own :class:`~SlicerMedFuse.hemorrhage.anatomy.HeadAnatomy`
masks and its LPS geometry (positions in mm from the image direction, never from array order):

* **Atrophy**: brain within ``atrophy_mm`` (spatially modulated) of subarachnoid CSF or of the
  cavity's surface turns to CSF, so sulci and the brain-surface CSF widen.
* **Ventricles**: brain within ``ventricle_growth_mm`` of the ventricles turns to CSF.
* **Calcifications**: choroid plexus (atria of both lateral ventricles), pineal (midline, behind
  the third ventricle), falx (thin plaques on the midsagittal plane, upper cavity), basal ganglia
  (punctate, both sides, ~20-25 mm from the midline at the level of the third ventricle).
* **Head holder**: a plastic shell over a foam pad behind the occiput, in the air outside the head.

Each change is a partial-volume blend ``(1 - w) * CT + w * target + sqrt(1 - (1 - w)^2) * noise``
with noise matched to the CT (:func:`~SlicerMedFuse.hemorrhage.simulator.estimate_noise`), so
the CT's noise level is kept in every changed voxel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.hemorrhage import _morphology as morph
from SlicerMedFuse.hemorrhage.anatomy import HeadAnatomy, _axis_coordinate
from SlicerMedFuse.hemorrhage.simulator import NoiseModel, estimate_noise

__all__ = ["CALCIFICATION_SITES", "AnatomyVariation", "sample_anatomy_variation", "vary_anatomy"]

CALCIFICATION_SITES = ("choroid_plexus", "pineal", "falx", "basal_ganglia")
"""Where physiological (not bleed) intracranial calcifications are placed."""

_SITE_PROBABILITY = {"choroid_plexus": 0.6, "pineal": 0.5, "falx": 0.3, "basal_ganglia": 0.2}
_PARTIAL_VOLUME_MM = 1.0  # width of the blend at every boundary this module draws
_MIN_NOISE_VOXELS = 16
_AIR_HU = -500.0  # below this, a voxel outside the head is air
_HEAD_HU = -400.0  # above this, a voxel belongs to the head (skin, bone, tissue) or a support


@dataclasses.dataclass(frozen=True)
class AnatomyVariation:
    """One draw of anatomical variation (mm, HU).

    Attributes:
        atrophy_mm: Widening (mm) of the sulci and the brain-surface CSF; 0 for none.
        ventricle_growth_mm: Enlargement (mm) of the ventricles into the brain; 0 for none.
        calcifications: Sites that get physiological calcifications, a subset of
            :data:`CALCIFICATION_SITES`.
        calcification_hu: Peak density (HU) of the calcifications.
        head_holder: Add a head holder (plastic shell and foam pad) behind the occiput.
    """

    atrophy_mm: float
    ventricle_growth_mm: float
    calcifications: tuple[str, ...]
    calcification_hu: float
    head_holder: bool

    def __post_init__(self) -> None:
        if not (self.atrophy_mm >= 0.0 and self.ventricle_growth_mm >= 0.0):
            raise UsageError("Anatomy variation: atrophy_mm and ventricle_growth_mm must be >= 0 mm.")
        unknown = sorted(set(self.calcifications) - set(CALCIFICATION_SITES))
        if unknown:
            raise UsageError(
                f"Anatomy variation: unknown calcification site(s) {unknown}; use {list(CALCIFICATION_SITES)}."
            )
        if self.calcifications and not self.calcification_hu > 0.0:
            raise UsageError("Anatomy variation: calcification_hu must be > 0 HU when calcifications are given.")

    @classmethod
    def none(cls) -> AnatomyVariation:
        """No variation: :func:`vary_anatomy` returns the CT unchanged."""
        return cls(0.0, 0.0, (), 0.0, False)

    @property
    def is_none(self) -> bool:
        """True if this variation changes nothing."""
        return (
            self.atrophy_mm == 0.0
            and self.ventricle_growth_mm == 0.0
            and not self.calcifications
            and not self.head_holder
        )

    def to_dict(self) -> dict:
        """JSON-ready description (for a case's provenance)."""
        values = dataclasses.asdict(self)
        values["calcifications"] = list(self.calcifications)
        return values


def sample_anatomy_variation(rng: np.random.Generator) -> AnatomyVariation:
    """Draw one variation.

    Atrophy 0-4 mm (a third of the cases none), ventricle growth 0-6 mm, each calcification site
    with its own probability (choroid plexus 0.6, pineal 0.5, falx 0.3, basal ganglia 0.2), peak
    density 90-600 HU, a head holder in half of the cases.

    Args:
        rng: The random generator; the same state gives the same variation.

    Returns:
        The drawn :class:`AnatomyVariation`.
    """
    atrophy = 0.0 if rng.random() < 1.0 / 3.0 else float(rng.uniform(0.5, 4.0))
    growth = float(rng.uniform(0.0, 6.0))
    draws = rng.random(len(CALCIFICATION_SITES))
    sites = tuple(site for site, u in zip(CALCIFICATION_SITES, draws, strict=True) if u < _SITE_PROBABILITY[site])
    density = float(rng.uniform(90.0, 600.0))
    holder = bool(rng.random() < 0.5)
    return AnatomyVariation(atrophy, growth, sites, density, holder)


def vary_anatomy(
    ct: sitk.Image, anatomy: HeadAnatomy, variation: AnatomyVariation, rng: np.random.Generator
) -> sitk.Image:
    """The CT with the anatomical variation applied.

    Args:
        ct: Head CT in HU (3-D, any pixel type and orientation). Not modified.
        anatomy: The CT's :func:`~SlicerMedFuse.hemorrhage.anatomy.analyze_head_ct` result.
        variation: What to change.
        rng: Random generator for positions, shapes and noise; the same state gives the same image.

    Returns:
        A new image on the CT's grid (size, spacing, origin, direction) with its pixel type.

    Raises:
        InputError: If ``anatomy`` was derived from an image of another size.
    """
    if ct.GetDimension() != 3 or anatomy.icv.shape != tuple(reversed(ct.GetSize())):
        raise InputError("The anatomy given was derived from another image; analyse this CT with analyze_head_ct.")
    if variation.is_none:
        return sitk.Image(ct)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    painter = _Painter(ct, hu, _noise_of(ct, anatomy), rng)
    csf = _Compartments(anatomy.ventricles, anatomy.csf)
    if variation.atrophy_mm > 0.0 or variation.ventricle_growth_mm > 0.0:
        csf = _widen_csf(painter, anatomy, variation)
    if variation.calcifications:
        _calcify(painter, anatomy, csf, variation)
    if variation.head_holder:
        _add_head_holder(painter, anatomy)
    return _to_pixel_type(hu, ct)


def _noise_of(ct: sitk.Image, anatomy: HeadAnatomy) -> NoiseModel:
    """:func:`estimate_noise` on the box of the deep brain it samples (a sixth of the image, same result)."""
    box = _mask_box(anatomy.brain & (anatomy.depth_mm >= 5.0), margin=4)
    if box is None:
        return estimate_noise(ct, anatomy)
    cropped = ct[box[2], box[1], box[0]]
    arrays = {
        field.name: getattr(anatomy, field.name)[box]
        for field in dataclasses.fields(anatomy)
        if isinstance(getattr(anatomy, field.name), np.ndarray)
    }
    return estimate_noise(cropped, dataclasses.replace(anatomy, reference=cropped, **arrays))


class _Painter:
    """Blends targets into a HU array with partial-volume weights and the CT's own noise."""

    def __init__(self, ct: sitk.Image, hu: np.ndarray, noise: NoiseModel, rng: np.random.Generator) -> None:
        self.ct, self.hu, self.noise, self.rng = ct, hu, noise, rng
        sx, sy, sz = ct.GetSpacing()
        self.spacing_zyx = (float(sz), float(sy), float(sx))

    def blend(self, box: tuple[slice, ...], weight: np.ndarray, target_hu: float | np.ndarray) -> None:
        """``hu[box] <- (1 - w) hu + w target + sqrt(1 - (1 - w)^2) noise`` where ``w > 0``."""
        inner = _mask_box(weight > 0, margin=0)
        if inner is None:
            return
        weight = weight[inner]
        target = target_hu[inner] if isinstance(target_hu, np.ndarray) else target_hu
        region = self.hu[box][inner]
        keep = 1.0 - weight
        # Noise is drawn on at least 16 voxels per axis: its correlation and unit variance are
        # set over the drawn block, which a one-voxel region could not hold.
        drawn = self.noise.sample([max(n, _MIN_NOISE_VOXELS) for n in weight.shape], self.rng)
        noise = drawn[tuple(slice(0, n) for n in weight.shape)]
        region[...] = np.where(weight > 0, keep * region + weight * target + np.sqrt(1.0 - keep**2) * noise, region)

    def coordinates(self, box: tuple[slice, ...]) -> np.ndarray:
        """LPS coordinates (mm) of the voxels of ``box``, ``(3, z, y, x)``."""
        start = (box[2].start, box[1].start, box[0].start)
        return morph.physical_axes(self.ct, start, tuple(s.stop - s.start for s in box))

    def points(self, mask: np.ndarray) -> np.ndarray:
        """LPS coordinates (mm) of the voxels of a full-size mask, ``(n, 3)``."""
        kji = np.argwhere(mask)[:, ::-1].astype(np.float64)
        direction = np.asarray(self.ct.GetDirection(), float).reshape(3, 3)
        return np.asarray(self.ct.GetOrigin()) + (kji * np.asarray(self.ct.GetSpacing())) @ direction.T

    def box_around(self, center_lps: np.ndarray, radius_mm: float) -> tuple[slice, ...] | None:
        """Index box (z, y, x) covering a ball of ``radius_mm`` around a point; None if outside the image."""
        index = np.asarray(self.ct.TransformPhysicalPointToContinuousIndex(tuple(map(float, center_lps))))[::-1]
        half = np.ceil(radius_mm / np.asarray(self.spacing_zyx)).astype(int)
        low = np.maximum(np.floor(index).astype(int) - half, 0)
        high = np.minimum(np.ceil(index).astype(int) + half + 1, self.hu.shape)
        if np.any(high <= low):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def _ramp(signed_mm: np.ndarray) -> np.ndarray:
    """Partial-volume weight from a signed distance (mm, positive inside): 0.5 on the boundary."""
    return np.clip(0.5 + signed_mm / _PARTIAL_VOLUME_MM, 0.0, 1.0).astype(np.float32)


def _mask_box(mask: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Index box of the true voxels of ``mask`` grown by ``margin`` voxels; None if the mask is empty."""
    hits = [np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis))) for axis in range(mask.ndim)]
    if hits[0].size == 0:
        return None
    return tuple(
        slice(max(int(h[0]) - margin, 0), min(int(h[-1]) + margin + 1, n))
        for h, n in zip(hits, mask.shape, strict=True)
    )


class _Compartments(NamedTuple):
    """CSF spaces after atrophy and ventricle growth, full-size bool ``(z, y, x)``."""

    ventricles: np.ndarray
    csf: np.ndarray


def _widen_csf(painter: _Painter, anatomy: HeadAnatomy, variation: AnatomyVariation) -> _Compartments:
    """Turn brain near the CSF spaces into CSF (atrophy, ventricle growth)."""
    box, sp = _mask_box(anatomy.icv, margin=2), painter.spacing_zyx
    brain = anatomy.brain[box]
    atrophy = np.zeros(brain.shape, np.float32)
    growth = np.zeros(brain.shape, np.float32)
    if variation.atrophy_mm > 0.0:
        atrophy = _atrophy_weight(anatomy, box, variation.atrophy_mm, painter) * brain
    if variation.ventricle_growth_mm > 0.0 and anatomy.ventricles.any():
        distance = morph.distance_outside_mm(anatomy.ventricles[box], sp)
        growth = _ramp(variation.ventricle_growth_mm - distance) * brain
    csf_hu = float(np.median(painter.hu[anatomy.csf])) if anatomy.csf.any() else 5.0
    painter.blend(box, np.maximum(atrophy, growth), csf_hu)
    ventricles, csf = anatomy.ventricles.copy(), anatomy.csf.copy()
    ventricles[box] |= growth >= 0.5
    csf[box] |= np.maximum(atrophy, growth) >= 0.5
    return _Compartments(ventricles, csf)


def _atrophy_weight(anatomy: HeadAnatomy, box: tuple[slice, ...], atrophy_mm: float, painter: _Painter) -> np.ndarray:
    """Partial-volume weight (``box`` shape) of the brain that atrophy turns to CSF.

    The brain recedes from the subarachnoid CSF and the cavity's surface by ``atrophy_mm``, more
    at the cortex than deep down (sulci open like a V), unevenly across the brain (a smooth random
    field, ~2 cm scale). Specks of CSF-density noise (< 0.03 mL) do not count as CSF spaces, or
    they would grow into round holes.
    """
    sp = painter.spacing_zyx
    spaces = morph.keep_components(anatomy.subarachnoid[box], sp, min_volume_ml=0.03)[2]
    surface = spaces | ~anatomy.icv[box]
    uneven = 1.0 + 0.3 * morph.smooth_noise(surface.shape, 10.0, sp, painter.rng)
    shallow = np.clip(1.2 - anatomy.depth_mm[box] / 25.0, 0.3, 1.0)
    reach = np.maximum(atrophy_mm * uneven * shallow, 0.0)
    return _ramp(reach - morph.distance_outside_mm(surface, sp))


def _calcify(painter: _Painter, anatomy: HeadAnatomy, csf: _Compartments, variation: AnatomyVariation) -> None:
    """Paint the requested physiological calcifications (never labelled as bleeds)."""
    placements = {
        "choroid_plexus": lambda: _choroid_plexus(painter, anatomy, csf.ventricles),
        "pineal": lambda: _pineal(painter, anatomy),
        "falx": lambda: _falx(painter, anatomy),
        "basal_ganglia": lambda: _basal_ganglia(painter, anatomy, anatomy.brain & ~csf.csf),
    }
    for site in CALCIFICATION_SITES:
        if site in variation.calcifications:
            for blobs, mask in placements[site]():
                _paint_deposit(painter, blobs, mask, variation.calcification_hu)


@dataclasses.dataclass(frozen=True)
class _Blob:
    """An ellipsoid: centre (LPS mm), orthonormal axes (rows, LPS) and semi-axes (mm)."""

    center: np.ndarray
    axes: np.ndarray
    semi_mm: np.ndarray
    peak: float = 1.0  # fraction of the deposit's peak density


_Deposit = tuple[list[_Blob], np.ndarray]
"""One calcification: its blobs and the mask (full-size bool) it is clipped to."""


def _random_axes(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    return q.T


def _cluster(center: np.ndarray, diameter_mm: float, rng: np.random.Generator, spread: int = 3) -> list[_Blob]:
    """A main blob of ``diameter_mm`` plus 0-``spread - 1`` smaller satellites (calcifications are clumpy)."""
    radius = 0.5 * diameter_mm
    blobs = [_Blob(center, _random_axes(rng), radius * rng.uniform(0.7, 1.0, 3))]
    for _ in range(int(rng.integers(0, spread))):
        offset = rng.normal(0.0, 0.6 * radius, 3)
        blobs.append(
            _Blob(center + offset, _random_axes(rng), 0.6 * radius * rng.uniform(0.6, 1.0, 3), rng.uniform(0.6, 1.0))
        )
    return blobs


def _paint_deposit(painter: _Painter, blobs: Sequence[_Blob], mask: np.ndarray, peak_hu: float) -> None:
    """Blend a cluster of Gaussian-profile ellipsoids (peak ``peak_hu``) into the CT, clipped to ``mask``.

    A blob's density is a Gaussian with standard deviations of half its semi-axes, cut at the
    semi-axes. Each voxel gets the blob's mean over the voxel (the Gaussian convolved with the
    voxel's box, as a Gaussian of variance ``spacing^2 / 12`` per voxel axis): a calcification
    smaller than a voxel shows as a fainter voxel, as in a real scan, instead of vanishing between
    voxel centres.
    """
    direction = np.asarray(painter.ct.GetDirection(), float).reshape(3, 3)
    voxel_cov = direction @ np.diag(np.asarray(painter.ct.GetSpacing(), float) ** 2 / 12.0) @ direction.T
    covariances = [blob.axes.T @ np.diag((0.5 * blob.semi_mm) ** 2) @ blob.axes + voxel_cov for blob in blobs]
    reach = max(
        float(np.linalg.norm(blob.center - blobs[0].center)) + 2.0 * float(np.sqrt(np.linalg.eigvalsh(cov).max()))
        for blob, cov in zip(blobs, covariances, strict=True)
    )
    box = painter.box_around(blobs[0].center, reach)
    if box is None:
        return
    coords = painter.coordinates(box)
    weight = np.zeros(coords.shape[1:], np.float32)
    cutoff = np.exp(-0.5 * 2.0**2)  # the profile ends at two standard deviations, shifted to reach 0 there
    for blob, cov in zip(blobs, covariances, strict=True):
        offset = coords - blob.center.astype(np.float32)[:, None, None, None]
        precision = np.linalg.inv(cov).astype(np.float32)
        squared = np.einsum("i...,ij,j...->...", offset, precision, offset)
        sharp = (0.5 * blob.semi_mm) ** 2
        spread = float(np.sqrt(np.prod(sharp) / np.linalg.det(cov)))  # peak of the voxel-averaged Gaussian
        profile = (np.exp(-0.5 * squared) - cutoff) / (1.0 - cutoff)
        weight = np.maximum(weight, blob.peak * spread * np.clip(profile, 0.0, 1.0))
    painter.blend(box, weight * mask[box], peak_hu)


def _choroid_plexus(painter: _Painter, anatomy: HeadAnatomy, ventricles: np.ndarray) -> Iterator[_Deposit]:
    """Glomus calcification in the atrium of each lateral ventricle.

    The atrium is taken as the centre of the lateral ventricle's posterior quarter within its
    upper-middle height (40-75 % of its extent); the blob sits on the ventricle voxel nearest to
    that centre moved by a few mm, so it always lies inside the (grown) ventricle.
    """
    points = painter.points(ventricles)
    rng, midline_x = painter.rng, anatomy.midline_lps[0]
    for side in (-1, 1):
        lateral = points[(points[:, 0] - midline_x) * side > 8.0]  # beyond the septum and third ventricle
        if len(lateral) < 20:
            continue
        low, high = lateral[:, 2].min(), lateral[:, 2].max()
        band = lateral[(lateral[:, 2] >= low + 0.4 * (high - low)) & (lateral[:, 2] <= low + 0.75 * (high - low))]
        band = band if len(band) >= 20 else lateral
        atrium = band[band[:, 1] >= np.quantile(band[:, 1], 0.75)]  # LPS +y is posterior
        target = atrium.mean(axis=0) + rng.normal(0.0, 2.0, 3)
        center = atrium[int(np.argmin(np.sum((atrium - target) ** 2, axis=1)))]
        yield _cluster(center, float(rng.uniform(3.0, 8.0)), rng), ventricles


def _pineal(painter: _Painter, anatomy: HeadAnatomy) -> Iterator[_Deposit]:
    """One midline blob just behind the third ventricle."""
    rng, (midline_x, _, _) = painter.rng, anatomy.midline_lps
    points = painter.points(anatomy.ventricles)
    if len(points) == 0:
        return
    center_s = float(points[:, 2].mean())
    third = points[(np.abs(points[:, 0] - midline_x) < 3.0) & (np.abs(points[:, 2] - center_s + 5.0) < 10.0)]
    if len(third) >= 10:
        back = third[third[:, 1] >= np.quantile(third[:, 1], 0.9)]
        center = np.array([midline_x, back[:, 1].max() + rng.uniform(2.0, 5.0), float(np.median(back[:, 2]))])
    else:
        center = points.mean(axis=0) + np.array([0.0, rng.uniform(10.0, 20.0), -5.0])
        center[0] = midline_x
    yield _cluster(center, float(rng.uniform(3.0, 6.0)), rng, spread=2), anatomy.icv


def _falx(painter: _Painter, anatomy: HeadAnatomy) -> Iterator[_Deposit]:
    """1-3 thin plaques on the midsagittal plane in the upper cavity, along the inner table's curve."""
    rng, (midline_x, midline_y, midline_s) = painter.rng, anatomy.midline_lps
    # The plane x = midline, one voxel thick whatever the orientation; from the inner table down
    # to the falx's free edge (~25 mm), in the upper half of the cavity.
    x = _axis_coordinate(painter.ct, anatomy.icv.shape, 0)
    upper = anatomy.icv & (_axis_coordinate(painter.ct, anatomy.icv.shape, 2) >= midline_s)
    on_plane = np.abs(x - midline_x) <= 0.5 * max(painter.spacing_zyx) + 0.25
    points = painter.points(on_plane & upper & (anatomy.depth_mm >= 2.0) & (anatomy.depth_mm <= 25.0))
    if len(points) == 0:
        return
    for _ in range(int(rng.integers(1, 4))):
        center = points[int(rng.integers(len(points)))]
        radial = np.array([0.0, center[1] - midline_y, center[2] - midline_s])
        radial /= max(float(np.linalg.norm(radial)), 1e-6)
        tangent = np.array([0.0, -radial[2], radial[1]])
        axes = np.stack([np.array([1.0, 0.0, 0.0]), tangent, radial])
        semi = np.array([rng.uniform(0.5, 1.0), rng.uniform(4.0, 12.0), rng.uniform(1.5, 4.0)])
        yield [_Blob(center, axes, semi)], upper


def _basal_ganglia(painter: _Painter, anatomy: HeadAnatomy, parenchyma: np.ndarray) -> Iterator[_Deposit]:
    """Punctate calcifications in both globi pallidi.

    Nominally 20-25 mm from the midline, 0-8 mm anterior to and 0-8 mm below the ventricles'
    centre (the level of the third ventricle), mirrored with 1 mm jitter; each moves to the nearest
    parenchyma voxel, so that it is never painted into CSF.
    """
    rng, (midline_x, midline_y, midline_s) = painter.rng, anatomy.midline_lps
    points = painter.points(anatomy.ventricles)
    y_c, s_c = (float(points[:, 1].mean()), float(points[:, 2].mean())) if len(points) else (midline_y, midline_s)
    offset = np.array([rng.uniform(20.0, 25.0), -rng.uniform(0.0, 8.0), -rng.uniform(0.0, 8.0)])
    for side in (-1, 1):
        target = np.array([midline_x + side * offset[0], y_c + offset[1], s_c + offset[2]]) + rng.normal(0.0, 1.0, 3)
        center = _nearest_voxel(painter, parenchyma, target, 8.0)
        if center is not None:
            yield _cluster(center, float(rng.uniform(2.0, 5.0)), rng), parenchyma


def _nearest_voxel(painter: _Painter, mask: np.ndarray, target: np.ndarray, within_mm: float) -> np.ndarray | None:
    """LPS centre (mm) of the ``mask`` voxel nearest to ``target`` within ``within_mm``; None if there is none."""
    box = painter.box_around(target, within_mm)
    if box is None or not mask[box].any():
        return None
    coords = painter.coordinates(box)[:, mask[box]]
    squared = np.sum((coords - target.astype(np.float32)[:, None]) ** 2, axis=0)
    nearest = int(np.argmin(squared))
    return coords[:, nearest].astype(np.float64) if squared[nearest] <= within_mm**2 else None


def _add_head_holder(painter: _Painter, anatomy: HeadAnatomy) -> None:
    """A foam pad on the scalp and a plastic shell outside it, behind the occiput, in the air only.

    The pad and shell follow the head's outline at ``0..foam`` and ``foam..foam + shell`` mm from
    the scalp; they cover the axial directions within 50-80 degrees of posterior (LPS +y) around
    the cavity's centre, up to 0-30 mm below the top of the head, with soft edges.
    """
    rng, ct, sp = painter.rng, painter.ct, painter.spacing_zyx
    foam_mm, shell_mm = float(rng.uniform(4.0, 15.0)), float(rng.uniform(3.0, 5.0))
    foam_hu, shell_hu = float(rng.uniform(-900.0, -600.0)), float(rng.uniform(150.0, 400.0))
    half_angle, below_top = float(rng.uniform(50.0, 80.0)), float(rng.uniform(0.0, 30.0))
    center_x, center_y, _ = anatomy.midline_lps
    # Only the back half of the image can hold the holder: work there (half the voxels).
    back = _axis_coordinate(ct, painter.hu.shape, 1) >= center_y - 10.0
    box = _mask_box(back, margin=0)
    if box is None:
        return
    hu = painter.hu[box]
    start = tuple(b.start for b in box)
    head = morph.keep_components(hu > _HEAD_HU, sp, largest=1)[2]
    head = morph.fill_holes_2d(head, axis=anatomy.superior_axis)
    if not head.any():
        return
    air = ~head & (hu < _AIR_HU)
    distance = morph.distance_outside_mm(head, sp)
    x, y, s = (_axis_coordinate(ct, hu.shape, axis, start) for axis in range(3))
    top = float(s[head].max()) - below_top
    angle = np.degrees(np.arctan2(np.abs(x - center_x), y - center_y))
    cover = np.clip((half_angle - angle) / 10.0, 0.0, 1.0) * np.clip((top - s) / 10.0, 0.0, 1.0)
    inside = air * cover
    foam = _ramp(np.minimum(distance, foam_mm - distance)) * inside
    shell = _ramp(np.minimum(distance - foam_mm, foam_mm + shell_mm - distance)) * inside
    total = foam + shell
    target = (foam * foam_hu + shell * shell_hu) / np.maximum(total, 1e-6)
    painter.blend(box, np.minimum(total, 1.0), target)


def _to_pixel_type(hu: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """Float HU array -> image with the reference's geometry and pixel type (integers: clamped, rounded)."""
    image = sitk.GetImageFromArray(hu)
    image.CopyInformation(reference)
    dtype = sitk.GetArrayViewFromImage(reference).dtype
    if np.issubdtype(dtype, np.integer):
        limits = np.iinfo(dtype)
        image = sitk.Round(sitk.Clamp(image, sitk.sitkFloat32, float(limits.min), float(limits.max)))
    return sitk.Cast(image, reference.GetPixelID())

"""Bleed shapes for the hemorrhage simulator, one function per BHSD class.

Each function places one bleed in the current anatomy and returns a :class:`LesionShape`: a box
of the volume, a signed distance to the bleed surface (mm, positive inside) and, for bleeds with
mass effect, the direction tissue is pushed. The simulator turns the signed distance into a
partial-volume weight, paints blood and writes the label. Shapes follow the radiology of acute
blood on non-contrast CT:

* **EDH** -- lentiform (biconvex): thickness ``T * sqrt(1 - (rho / R)^2)`` against the inner table,
  steep margins, one hemisphere.
* **SDH** -- crescent: thickness ``T * (1 - (rho / R)^2)`` spreading thinly along the convexity.
* **IPH** -- irregular ellipsoid in the parenchyma (random axes, rotation, smooth surface noise).
* **IVH** -- dependent layering in one or both lateral ventricles: a flat fluid level
  perpendicular to gravity.
* **SAH** -- CSF of the sulci (near a convexity point) or of the basal cisterns, patchy.

``rho`` is the distance along the skull from the contact point, ``sqrt(|p - c|^2 - depth(p)^2)``.
All arrays are ``(z, y, x)``; coordinates LPS mm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.hemorrhage import _morphology as morph
from SlicerMedFuse.hemorrhage.labels import HemorrhageClass

if TYPE_CHECKING:
    from SlicerMedFuse.hemorrhage.simulator import SimulationConfig

__all__ = ["AnatomyState", "LesionShape", "SHAPERS"]


@dataclasses.dataclass
class AnatomyState:
    """The (possibly mass-effect-warped) anatomy a bleed is placed in; arrays ``(z, y, x)``."""

    reference: sitk.Image
    icv: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    sulci: np.ndarray
    cisterns: np.ndarray
    convexity: np.ndarray
    depth_mm: np.ndarray
    midline_x: float
    occupied: np.ndarray

    def free_side(self, rng: np.random.Generator) -> float:
        """+1 (patient left) or -1: the hemisphere away from bleeds painted so far, random if none."""
        index = np.nonzero(self.occupied)
        if index[0].size == 0:
            return 1.0 if rng.random() < 0.5 else -1.0
        return -1.0 if float(np.mean(_lateral_offsets(self, index))) >= 0.0 else 1.0

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        sx, sy, sz = self.reference.GetSpacing()
        return (sz, sy, sx)


@dataclasses.dataclass
class LesionShape:
    """One placed bleed.

    Attributes:
        box: Slices ``(z, y, x)`` of the volume the arrays cover.
        signed_distance_mm: Distance to the bleed surface (mm), positive inside, ``(z, y, x)`` of the box.
        allowed: Where blood may go (anatomical compartment), bool, box shape.
        center_lps: The placement point (mm).
        push_direction: Unit LPS vectors ``(3, z, y, x)`` tissue is pushed along, or None (no mass effect).
        push_mm: Displacement at the bleed surface (mm) before the configured cap.
    """

    box: tuple[slice, slice, slice]
    signed_distance_mm: np.ndarray
    allowed: np.ndarray
    center_lps: tuple[float, float, float]
    push_direction: np.ndarray | None = None
    push_mm: float = 0.0


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _pick_voxel(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int] | None:
    """A uniformly random ``(z, y, x)`` index inside ``mask``, or None if it is empty."""
    flat = np.flatnonzero(mask)
    if flat.size == 0:
        return None
    return tuple(int(i) for i in np.unravel_index(int(rng.choice(flat)), mask.shape))


def _lateral_offsets(state: AnatomyState, index_zyx: tuple[np.ndarray, ...]) -> np.ndarray:
    """LPS x minus the midline x (mm) of the voxels ``index_zyx`` (as from ``np.nonzero``)."""
    ref = state.reference
    direction = np.asarray(ref.GetDirection(), float).reshape(3, 3)
    step_x = direction[0] * np.asarray(ref.GetSpacing(), float)  # LPS x moved per i, j, k step
    z, y, x = index_zyx
    return ref.GetOrigin()[0] + step_x[0] * x + step_x[1] * y + step_x[2] * z - state.midline_x


def _pick_lateral(
    state: AnatomyState, mask: np.ndarray, min_offset_mm: float, side: float, rng: np.random.Generator
) -> tuple[int, int, int] | None:
    """A random voxel of ``mask`` at least ``min_offset_mm`` lateral on ``side`` (+1 left, -1 right).

    Falls back to any voxel of ``mask`` when none qualifies.
    """
    index = np.nonzero(mask)
    if index[0].size == 0:
        return None
    far = np.flatnonzero(_lateral_offsets(state, index) * side >= min_offset_mm)
    pool = far if far.size else np.arange(index[0].size)
    pick = int(rng.choice(pool))
    return tuple(int(axis[pick]) for axis in index)


def _box_around(state: AnatomyState, index_zyx: tuple[int, int, int], half_mm: float) -> tuple[slice, slice, slice]:
    """Index box holding the ball of ``half_mm`` around a voxel, clipped to the volume."""
    shape = state.icv.shape
    return tuple(
        slice(max(c - int(np.ceil(half_mm / s)), 0), min(c + int(np.ceil(half_mm / s)) + 1, n))
        for c, s, n in zip(index_zyx, state.spacing_zyx, shape, strict=True)
    )


def _coords(state: AnatomyState, box: tuple[slice, ...]) -> np.ndarray:
    """LPS coordinates ``(3, z, y, x)`` of the voxels of ``box``."""
    shape = tuple(b.stop - b.start for b in box)
    return morph.physical_axes(state.reference, (box[2].start, box[1].start, box[0].start), shape)


def _point(state: AnatomyState, index_zyx: tuple[int, int, int]) -> np.ndarray:
    z, y, x = index_zyx
    return np.asarray(state.reference.TransformIndexToPhysicalPoint((x, y, z)), np.float32)


def _inward_normals(state: AnatomyState, box: tuple[slice, ...]) -> np.ndarray:
    """Unit LPS vectors ``(3, z, y, x)`` pointing away from the inner table (the depth gradient)."""
    sp = state.spacing_zyx
    depth = morph.smooth_mm(state.depth_mm[box], 2.0, sp)
    gz, gy, gx = np.gradient(depth, *sp)
    direction = np.asarray(state.reference.GetDirection(), np.float32).reshape(3, 3)
    grad = (
        direction[:, 0, None, None, None] * gx[None]
        + direction[:, 1, None, None, None] * gy[None]
        + direction[:, 2, None, None, None] * gz[None]
    )
    return grad / np.maximum(np.linalg.norm(grad, axis=0, keepdims=True), 1e-6)


def _extra_axial(
    state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig, lentiform: bool
) -> LesionShape | None:
    """EDH (lentiform) or SDH (crescent) against the inner table of one hemisphere."""
    thickness = _uniform(rng, cfg.edh_thickness_mm if lentiform else cfg.sdh_thickness_mm)
    radius = 0.5 * _uniform(rng, cfg.edh_diameter_mm if lentiform else cfg.sdh_extent_mm)
    site = _pick_lateral(state, state.convexity & ~state.occupied, 20.0, state.free_side(rng), rng)
    if site is None:
        return None
    center = _point(state, site)
    side = 1.0 if center[0] >= state.midline_x else -1.0
    box = _box_around(state, site, radius * 1.15 + cfg.displacement_decay_mm * 2.5)
    p = _coords(state, box)
    depth = state.depth_mm[box]
    rho = np.sqrt(np.maximum(np.sum((p - center[:, None, None, None]) ** 2, axis=0) - depth**2, 0.0))
    sp = state.spacing_zyx
    rough = np.tanh(morph.smooth_noise(depth.shape, 0.3 * radius, sp, rng))  # bounded: no detached bits
    r_eff = radius * (1.0 + 0.1 * rough)
    u = np.clip(rho / r_eff, 0.0, 1.0)
    profile = np.sqrt(1.0 - u**2) if lentiform else 1.0 - u**2
    local_t = thickness * (1.0 + 0.08 * rough) * profile
    signed = np.where(rho < r_eff, local_t - depth, -np.maximum(depth, rho - r_eff))
    free = state.icv[box] & ~state.ventricles[box] & ~state.occupied[box]
    allowed = free & ((p[0] - state.midline_x) * side > 1.5)
    return LesionShape(
        box=box,
        signed_distance_mm=signed.astype(np.float32),
        allowed=allowed,
        center_lps=tuple(float(c) for c in center),
        push_direction=_inward_normals(state, box),
        push_mm=0.5 * thickness,
    )


def epidural(state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig) -> LesionShape | None:
    """A lentiform epidural hematoma against the lateral convexity."""
    return _extra_axial(state, rng, cfg, lentiform=True)


def subdural(state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig) -> LesionShape | None:
    """A crescentic subdural hematoma along the convexity."""
    return _extra_axial(state, rng, cfg, lentiform=False)


def intraparenchymal(state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig) -> LesionShape | None:
    """An irregular ellipsoidal parenchymal hematoma of a volume drawn from ``cfg.iph_volume_ml``."""
    volume_mm3 = 1000.0 * _uniform(rng, cfg.iph_volume_ml)
    radius = (3.0 * volume_mm3 / (4.0 * np.pi)) ** (1.0 / 3.0)
    site = _pick_voxel(state.brain & (state.depth_mm >= radius + 8.0) & ~state.ventricles & ~state.occupied, rng)
    if site is None:
        return None
    axes = radius * np.exp(rng.normal(0.0, 0.2, 3))
    axes *= radius / np.prod(axes) ** (1.0 / 3.0)  # keep the volume
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    center = _point(state, site)
    margin = float(axes.max()) * (1.0 + cfg.iph_irregularity) + max(
        cfg.iph_edema_mm[1], 2.5 * cfg.displacement_decay_mm
    )
    box = _box_around(state, site, margin)
    offset = _coords(state, box) - center[:, None, None, None]
    local = np.einsum("ij,i...->j...", rotation.astype(np.float32), offset) / axes[:, None, None, None].astype(
        np.float32
    )
    rho = np.linalg.norm(local, axis=0)
    rough = np.tanh(morph.smooth_noise(rho.shape, 0.4 * radius, state.spacing_zyx, rng))  # in (-1, 1)
    signed = (1.0 - rho * (1.0 + cfg.iph_irregularity * 0.5 * rough)) * radius
    allowed = state.icv[box] & ~state.ventricles[box] & ~state.occupied[box] & (state.depth_mm[box] >= 2.0)
    radial = offset / np.maximum(np.linalg.norm(offset, axis=0, keepdims=True), 1e-3)
    return LesionShape(
        box=box,
        signed_distance_mm=signed.astype(np.float32),
        allowed=allowed,
        center_lps=tuple(float(c) for c in center),
        push_direction=radial,
        push_mm=0.35 * radius,
    )


def intraventricular(state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig) -> LesionShape | None:
    """Blood layering in the dependent part of one (or both) lateral ventricles, flat fluid level."""
    index = np.nonzero(state.ventricles & ~state.occupied)
    if index[0].size == 0:
        return None
    lateral = _lateral_offsets(state, index)
    if rng.random() >= cfg.ivh_bilateral_probability:
        one_side = lateral * (1.0 if rng.random() < 0.5 else -1.0) >= 0.0
        if one_side.any():
            index = tuple(axis[one_side] for axis in index)
    chosen = np.zeros_like(state.ventricles)
    chosen[index] = True
    box = _tight_box(chosen, margin=3)
    chosen_box = chosen[box]
    gravity = np.asarray(cfg.gravity_lps, np.float32)
    gravity /= np.linalg.norm(gravity)
    height = np.einsum("i,i...->...", gravity, _coords(state, box))  # larger = more dependent
    level = float(np.quantile(height[chosen_box], 1.0 - _uniform(rng, cfg.ivh_fraction)))
    signed = np.minimum(height - level, _signed_distance(chosen_box, state.spacing_zyx))
    center = tuple(int(np.median(axis)) for axis in index)
    return LesionShape(
        box=box,
        signed_distance_mm=signed.astype(np.float32),
        allowed=chosen_box,
        center_lps=tuple(float(c) for c in _point(state, center)),
    )


def subarachnoid(state: AnatomyState, rng: np.random.Generator, cfg: SimulationConfig) -> LesionShape | None:
    """Patchy blood filling the sulci near a convexity point, or the basal cisterns."""
    use_cisterns = rng.random() < cfg.sah_cistern_probability and state.cisterns.any()
    site = _pick_voxel(state.cisterns if use_cisterns else state.convexity, rng)
    if site is None:
        return None
    radius = _uniform(rng, cfg.sah_radius_mm)
    box = _box_around(state, site, radius * 1.3 + 2.0)
    center = _point(state, site)
    p = _coords(state, box)
    sp = state.spacing_zyx
    distance = np.linalg.norm(p - center[:, None, None, None], axis=0)
    extent = radius * (1.0 + 0.2 * morph.smooth_noise(distance.shape, 0.3 * radius, sp, rng))
    patches = morph.smooth_noise(distance.shape, 4.0, sp, rng) > -0.4  # ~65 % of the CSF, in patches
    space = (state.sulci[box] | state.cisterns[box]) & ~state.occupied[box] & (distance <= extent) & patches
    return LesionShape(
        box=box,
        signed_distance_mm=_signed_distance(space, sp).astype(np.float32),
        allowed=space,
        center_lps=tuple(float(c) for c in center),
    )


def _tight_box(mask: np.ndarray, margin: int) -> tuple[slice, slice, slice]:
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + margin + 1, mask.shape[axis])))
    return tuple(box)


def _signed_distance(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Signed distance (mm) to the surface of a voxel mask, positive inside, surface between voxels."""
    half = 0.5 * min(spacing_zyx)
    inside = morph.distance_inside_mm(mask, spacing_zyx)
    outside = morph.distance_outside_mm(mask, spacing_zyx)
    return np.where(mask, inside - half, half - outside)


SHAPERS: dict[HemorrhageClass, Callable[..., LesionShape | None]] = {
    HemorrhageClass.EDH: epidural,
    HemorrhageClass.IPH: intraparenchymal,
    HemorrhageClass.IVH: intraventricular,
    HemorrhageClass.SAH: subarachnoid,
    HemorrhageClass.SDH: subdural,
}
"""Shape function per class: ``(state, rng, config) -> LesionShape | None`` (None: no site found)."""

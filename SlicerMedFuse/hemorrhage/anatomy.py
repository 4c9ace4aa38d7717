"""Head-CT anatomy derived from the CT itself: intracranial cavity, brain, ventricles, CSF spaces.

The hemorrhage simulator (and the bad-input checks) need to know where the brain, the ventricles,
the sulci and cisterns and the inner table of the skull are. Nothing here is drawn by hand: every
mask comes from HU thresholds, connected components, hole filling and distance maps on the CT.

Pipeline (all thresholds in HU, all distances in mm, isotropic in physical space):

1. **Skull**: bone ``>= bone_hu`` closed by ``seal_mm`` (sutures, vessel channels) and, separately,
   by ``wide_seal_mm`` (skull defects, thin bone).
2. **Intracranial cavity (ICV)**: slice-wise hole filling of the skull along each of the three
   axes (a voxel is enclosed if the skull ring around it is closed in any plane), restricted to soft tissue/fluid, eroded by ``split_mm`` so that the cavity
   separates from the orbits, nasal cavity and neck, largest 3-D component, dilated back, holes
   filled.
3. **Tissue classes** on a 1 mm Gaussian-smoothed CT: the parenchyma peak HU is found from the
   ICV histogram; CSF is ICV below the midpoint between that peak and water-like CSF (~5 HU).
4. **Depth**: distance (mm) of every ICV voxel from the ICV surface (the inner table of the skull).
5. **Ventricles**: deep (``>= ventricle_depth_mm``), thick (survive an opening) CSF components that
   reach the midline, grown back geodesically inside nearby deep CSF. **Subarachnoid CSF** is the rest of the CSF, split into
   **sulci** (near the brain surface) and **cisterns** (deep: basal cisterns, fissures).
6. **Inner table**: the ICV shell next to bone; **convexity**: its part above the skull base.

Arrays are numpy in SimpleITK's ``(z, y, x)`` index order; coordinates are LPS mm.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.hemorrhage import _morphology as morph

__all__ = ["AnatomyConfig", "HeadAnatomy", "analyze_head_ct", "intracranial_mask", "superior_axis"]

_CSF_HU = 5.0  # typical CSF density; the CSF threshold sits between it and the parenchyma peak


@dataclasses.dataclass(frozen=True)
class AnatomyConfig:
    """Thresholds (HU) and sizes (mm, mL) of :func:`analyze_head_ct`; defaults suit adult head CT."""

    bone_hu: float = 250.0
    soft_tissue_hu: tuple[float, float] = (-15.0, 100.0)
    seal_mm: float = 3.0
    wide_seal_mm: float = 12.0
    split_mm: float = 4.0
    smoothing_mm: float = 1.0
    ventricle_depth_mm: float = 15.0
    ventricle_opening_mm: float = 1.5
    ventricle_min_ml: float = 0.5
    ventricle_midline_mm: float = 12.0
    ventricle_growth_mm: float = 15.0
    sulcus_depth_mm: float = 15.0
    inner_table_mm: float = 2.5
    min_icv_ml: float = 50.0


@dataclasses.dataclass(frozen=True, eq=False)
class HeadAnatomy:
    """Masks and maps of one head CT, all ``(z, y, x)`` arrays on the CT's voxel grid.

    Attributes:
        reference: The CT the anatomy was derived from (geometry source for :meth:`image`).
        icv: Intracranial cavity (brain + CSF spaces), bool.
        brain: Brain parenchyma (ICV minus CSF, minus hyperdense calcification), bool.
        csf: All CSF-density voxels in the ICV, bool.
        ventricles: Ventricular system (central, deep CSF), bool.
        sulci: Subarachnoid CSF near the brain surface, bool.
        cisterns: Deep subarachnoid CSF (basal cisterns, fissures), bool.
        inner_table: ICV shell along the inner table of the skull, bool.
        convexity: Part of ``inner_table`` above the skull base, bool.
        bone: Skull and other bone (``>= bone_hu``), bool.
        depth_mm: Distance (mm) from the ICV surface, float32, 0 outside the ICV.
        tissue_hu: Parenchyma peak density (HU).
        csf_threshold_hu: Density (HU) below which ICV voxels count as CSF.
        midline_lps: LPS point (mm) at the ICV centroid; its x is the midline.
        superior_axis: Array axis (0, 1 or 2) closest to the patient's superior direction.
        superior_sign: +1 if the index grows toward superior along that axis, else -1.
    """

    reference: sitk.Image
    icv: np.ndarray
    brain: np.ndarray
    csf: np.ndarray
    ventricles: np.ndarray
    sulci: np.ndarray
    cisterns: np.ndarray
    inner_table: np.ndarray
    convexity: np.ndarray
    bone: np.ndarray
    depth_mm: np.ndarray
    tissue_hu: float
    csf_threshold_hu: float
    midline_lps: tuple[float, float, float]
    superior_axis: int
    superior_sign: int

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """Voxel size (mm) in array order."""
        sx, sy, sz = self.reference.GetSpacing()
        return (sz, sy, sx)

    @property
    def subarachnoid(self) -> np.ndarray:
        """All subarachnoid CSF (sulci and cisterns), bool ``(z, y, x)``."""
        return self.sulci | self.cisterns

    def volume_ml(self, mask: np.ndarray) -> float:
        """Volume of a ``(z, y, x)`` mask in mL."""
        return float(np.count_nonzero(mask)) * float(np.prod(self.spacing_zyx)) / 1000.0

    def image(self, name: str) -> sitk.Image:
        """One mask or map as a SimpleITK image on the CT's grid (uint8 masks, float32 depth)."""
        array = getattr(self, name)
        out = sitk.GetImageFromArray(array.astype(np.uint8) if array.dtype == bool else array)
        out.CopyInformation(self.reference)
        return out


def superior_axis(image: sitk.Image) -> tuple[int, int]:
    """The ``(z, y, x)`` array axis closest to patient superior (LPS +z) and its sign (+1/-1)."""
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    column = int(np.argmax(np.abs(direction[2])))  # index axis i/j/k whose step moves most along S
    return 2 - column, int(np.sign(direction[2, column]) or 1)


def intracranial_mask(ct: sitk.Image, config: AnatomyConfig | None = None) -> np.ndarray:
    """The intracranial cavity (brain + CSF enclosed by the skull) of a head CT, bool ``(z, y, x)``.

    Empty when there is no skull-enclosed soft tissue (no head in the field of view).
    """
    cfg = config or AnatomyConfig()
    _check_volume(ct)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    sp = tuple(float(s) for s in reversed(ct.GetSpacing()))
    return _intracranial_cavity(hu, hu >= cfg.bone_hu, sp, superior_axis(ct)[0], cfg)


def analyze_head_ct(ct: sitk.Image, config: AnatomyConfig | None = None) -> HeadAnatomy:
    """Derive brain, ventricle, CSF-space and inner-table masks from a head CT in HU.

    Args:
        ct: 3-D head CT in Hounsfield units, any pixel type and orientation.
        config: Thresholds and sizes; defaults when None.

    Returns:
        The :class:`HeadAnatomy` of the scan.

    Raises:
        InputError: If the image is not 3-D or no intracranial cavity of ``min_icv_ml`` is found
            (no head in the field of view, or not a CT in HU).
    """
    cfg = config or AnatomyConfig()
    _check_volume(ct)
    hu = sitk.GetArrayFromImage(ct).astype(np.float32)
    sp = tuple(float(s) for s in reversed(ct.GetSpacing()))
    axis, sign = superior_axis(ct)

    bone = hu >= cfg.bone_hu
    icv = _intracranial_cavity(hu, bone, sp, axis, cfg)
    voxel_ml = float(np.prod(sp)) / 1000.0
    if np.count_nonzero(icv) * voxel_ml < max(cfg.min_icv_ml, voxel_ml):
        raise InputError(
            "No intracranial cavity (skull enclosing brain) was found in the image; give a head CT that covers the brain."
        )

    # Everything below works inside the cavity's bounding box (a third of a typical scan).
    box = _bounding_box(icv, margin=int(np.ceil((cfg.inner_table_mm + 2.0) / min(sp))))
    hu_c, icv_c, bone_c = hu[box], icv[box], bone[box]
    start = tuple(b.start for b in box)

    smooth = morph.smooth_mm(np.where(icv_c, hu_c, 0.0), cfg.smoothing_mm, sp)
    weight = morph.smooth_mm(icv_c.astype(np.float32), cfg.smoothing_mm, sp)
    smooth = np.where(icv_c, smooth / np.maximum(weight, 1e-3), 0.0)  # normalised: no bone bleeding in
    tissue_hu = _parenchyma_peak(smooth[icv_c])
    csf_thr = float(np.clip(0.5 * (tissue_hu + _CSF_HU), 8.0, 22.0))
    csf = icv_c & (smooth < csf_thr)
    brain = icv_c & ~csf & (smooth < 80.0)
    depth = morph.distance_inside_mm(icv_c, sp)

    x_mm, y_mm, s_mm = (_axis_coordinate(ct, hu_c.shape, axis_lps, start) for axis_lps in range(3))
    midline = (float(x_mm[icv_c].mean()), float(y_mm[icv_c].mean()), float(s_mm[icv_c].mean()))

    ventricles = _ventricles(csf, depth, x_mm, midline[0], sp, cfg)
    near_ventricle = morph.distance_outside_mm(ventricles, sp) <= 1.5 if ventricles.any() else np.zeros_like(csf)
    subarachnoid = csf & ~near_ventricle & (depth >= 1.0)
    sulci = subarachnoid & (depth < cfg.sulcus_depth_mm)
    cisterns = subarachnoid & (depth >= cfg.sulcus_depth_mm)

    near_bone = morph.distance_outside_mm(bone_c, sp) <= cfg.inner_table_mm + 1.0
    inner_table = icv_c & (depth <= cfg.inner_table_mm) & near_bone
    # Convexity: the inner table above the skull base, taken as 10 mm below the ventricles' centre.
    reference_s = float(s_mm[ventricles].mean()) - 10.0 if ventricles.any() else midline[2]
    convexity = inner_table & (s_mm >= reference_s)

    def full(array: np.ndarray) -> np.ndarray:
        out = np.zeros(hu.shape, array.dtype)
        out[box] = array
        return out

    return HeadAnatomy(
        reference=ct,
        icv=icv,
        brain=full(brain),
        csf=full(csf),
        ventricles=full(ventricles),
        sulci=full(sulci),
        cisterns=full(cisterns),
        inner_table=full(inner_table),
        convexity=full(convexity),
        bone=bone,
        depth_mm=full(depth),
        tissue_hu=tissue_hu,
        csf_threshold_hu=csf_thr,
        midline_lps=midline,
        superior_axis=axis,
        superior_sign=sign,
    )


def _check_volume(ct: sitk.Image) -> None:
    if ct.GetDimension() != 3 or ct.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("The hemorrhage tools need a 3-D single-channel CT volume; give a head CT series.")


def _intracranial_cavity(
    hu: np.ndarray, bone: np.ndarray, sp: tuple[float, float, float], axis: int, cfg: AnatomyConfig
) -> np.ndarray:
    """Brain + CSF enclosed by the skull, bool ``(z, y, x)``."""
    # Two seals: a tight one keeps the cavity's concave corners, a wide one bridges small skull
    # defects. Filling along all three axes keeps the cavity where a defect (craniotomy, thin
    # temporal squama) leaves the ring open in one plane: a voxel is enclosed if any plane is closed.
    enclosed = np.zeros_like(bone)
    for radius in (cfg.seal_mm, cfg.wide_seal_mm):
        skull = morph.binary_closing_mm(bone, radius, sp)
        for fill_axis in (axis, *(a for a in range(3) if a != axis)):
            enclosed |= morph.fill_holes_2d(skull, axis=fill_axis) & ~skull
    low, high = cfg.soft_tissue_hu
    candidate = enclosed & (hu > low) & (hu < high)
    core = morph.distance_inside_mm(candidate, sp) > cfg.split_mm
    if not core.any():
        return np.zeros_like(candidate)
    _, _, largest = morph.keep_components(core, sp, largest=1)
    grown = (morph.distance_outside_mm(largest, sp) <= cfg.split_mm + 0.5) & enclosed & ~bone
    filled = sitk.BinaryFillhole(sitk.GetImageFromArray(grown.astype(np.uint8)))
    return sitk.GetArrayFromImage(filled).astype(bool)


def _parenchyma_peak(values: np.ndarray) -> float:
    """Mode (HU) of the ICV density histogram between 15 and 50 HU (grey/white matter)."""
    hist, edges = np.histogram(values, bins=np.arange(15.0, 51.0, 1.0))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    smooth = np.convolve(hist.astype(float), kernel, mode="same")
    return float(edges[int(np.argmax(smooth))] + 0.5)


def _ventricles(
    csf: np.ndarray,
    depth: np.ndarray,
    x_mm: np.ndarray,
    midline_x: float,
    sp: tuple[float, float, float],
    cfg: AnatomyConfig,
) -> np.ndarray:
    """Deep CSF components that reach the midline, grown back geodesically into adjacent deep CSF.

    The lateral ventricles touch the septum pellucidum and the third ventricle lies on the
    midline, so a component counts as ventricular if it comes within ``ventricle_midline_mm`` of
    the midline plane; the opening removes thin sheets (interhemispheric fissure, sulci).
    """
    deep = csf & (depth >= cfg.ventricle_depth_mm)
    if not deep.any():
        return np.zeros_like(csf)
    opened = sitk.BinaryMorphologicalOpening(
        sitk.GetImageFromArray(deep.astype(np.uint8)), morph.radius_voxels(cfg.ventricle_opening_mm, sp), sitk.sitkBall
    )
    labels, sizes, kept = morph.keep_components(sitk.GetArrayFromImage(opened).astype(bool), sp, cfg.ventricle_min_ml)
    if not kept.any():
        return np.zeros_like(csf)
    # Closest approach of every component to the midline plane, vectorised with a scatter-min.
    offset = np.full(sizes.size + 1, np.inf)
    np.minimum.at(offset, labels[kept], np.abs(x_mm[kept] - midline_x))
    seeds = kept & (offset[labels] <= cfg.ventricle_midline_mm)
    if not seeds.any():
        return np.zeros_like(csf)
    allowed = (
        csf
        & (depth >= 0.5 * cfg.ventricle_depth_mm)
        & (morph.distance_outside_mm(seeds, sp) <= cfg.ventricle_growth_mm)
    )
    grown = sitk.BinaryReconstructionByDilation(
        sitk.GetImageFromArray(seeds.astype(np.uint8)), sitk.GetImageFromArray((allowed | seeds).astype(np.uint8))
    )
    return sitk.GetArrayFromImage(grown).astype(bool)


def _axis_coordinate(
    image: sitk.Image, shape_zyx: tuple[int, ...], lps_axis: int, start_zyx: tuple[int, ...] = (0, 0, 0)
) -> np.ndarray:
    """One LPS coordinate (mm) of every voxel of a block starting at ``start_zyx``, float32 ``(z, y, x)``."""
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    step = direction[lps_axis] * np.asarray(image.GetSpacing(), float)  # mm per index step of i, j, k
    origin = float(image.GetOrigin()[lps_axis])
    k = ((np.arange(shape_zyx[0]) + start_zyx[0]) * step[2])[:, None, None]
    j = ((np.arange(shape_zyx[1]) + start_zyx[1]) * step[1])[None, :, None]
    i = ((np.arange(shape_zyx[2]) + start_zyx[2]) * step[0])[None, None, :]
    return (origin + k + j + i).astype(np.float32)


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Slices of the bounding box of ``mask`` grown by ``margin`` voxels, clipped to the array."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + margin + 1, mask.shape[axis])))
    return tuple(box)

"""Simulated CT acquisition: re-scan a head CT (and its labels) as another scanner and protocol would.

A model trained on bleeds painted into one CT learns that CT's acquisition. Real head CTs differ in
slice thickness (partial-volume averaging over a slab), slice spacing, gantry tilt, in-plane pixel
size, reconstruction kernel, dose, beam hardening near the skull base, HU calibration and how much
of the head the slices cover. :func:`simulate_acquisition` reproduces these from a thin-slice CT:

1. **Geometry.** The slices are parallel planes tilted by ``tilt_deg`` about the left-right axis
   (LPS row ``(1, 0, 0)``, column ``(0, cos t, -sin t)``) and stacked along the table (LPS +z), so a
   tilted stack is sheared exactly as a real tilted DICOM series is. Every slice integrates the
   source over a slab of ``slice_thickness_mm`` along its normal (box profile, sub-planes at most
   0.75 mm apart; a real slice-sensitivity profile is smoother, a box is the worst case for partial
   volume), at ``inplane_mm`` pixels. Slices start and stop ``cut_base_mm`` / ``cut_vertex_mm``
   inside the head (field-of-view cuts). An optional pose transform (rotation, scale) is applied in
   the same resampling.
2. **Reconstruction.** A kernel (soft, standard, sharp; ``very_sharp`` is kept for held-out tests)
   blurs or edge-enhances each slice; noise of the dose level, shaped by the same kernel, is added
   (more for thin slices: ``noise_hu`` is the standard deviation at 5 mm, scaled by
   ``sqrt(5 / thickness)``); beam hardening adds the dark band between the petrous bones and
   streaks from dense bone in the lower slices; HU calibration gets a gain and an offset.
3. **Regularisation.** The sheared stack goes through
   :func:`~SlicerMedFuse.io.sheared_stack.regularize_stack`, the function the DICOM reader uses for
   tilted series, so the image reaches the model as a real tilted series read by the backend does.

Labels follow the same geometry: a slice's label is the class covering most of its slab (the
majority over the sub-planes), as an annotator would draw it on the thick slice.

The source CT bounds what can be simulated: slices thinner than its own (1.5 mm for the project's
CT) keep its partial volume, and pixels smaller than its own keep its resolution (they are
interpolated, only the noise is finer).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.io.sheared_stack import SlicePlacement, regularize_stack

__all__ = [
    "HELD_OUT_ACQUISITIONS",
    "KERNELS",
    "TRAINING_ACQUISITIONS",
    "Acquisition",
    "AcquisitionRanges",
    "ReconstructionKernel",
    "sample_acquisition",
    "simulate_acquisition",
]

#: Largest distance (mm) between the sub-planes that integrate one slab.
_SUB_PLANE_MM = 0.75
#: Thickness (mm) at which ``noise_hu`` is the noise's standard deviation.
_NOISE_REFERENCE_MM = 5.0
#: HU of air (outside the scanned field).
_AIR_HU = -1024.0
#: A head pose: rotation (and scale) about a centre, then a shift; maps scanner points to source points.
Pose = sitk.Euler3DTransform | sitk.AffineTransform
#: Density (HU) above which bone is dense enough to harden the beam (petrous bone, skull base).
_DENSE_BONE_HU = 900.0


@dataclasses.dataclass(frozen=True)
class ReconstructionKernel:
    """A reconstruction kernel as in-plane filters (mm).

    Attributes:
        blur_mm: Gaussian blur of the image (sigma, mm); 0 for none.
        sharpen: Unsharp-mask gain (edge enhancement with overshoot next to bone); 0 for none.
        noise_correlation_mm: Gaussian correlation of the noise (sigma, mm); 0 for white noise.
    """

    blur_mm: float
    sharpen: float
    noise_correlation_mm: float


#: Kernels by name. ``very_sharp`` (a bone kernel read at brain window) is not in the training ranges.
KERNELS: dict[str, ReconstructionKernel] = {
    "soft": ReconstructionKernel(blur_mm=0.7, sharpen=0.0, noise_correlation_mm=1.0),
    "standard": ReconstructionKernel(blur_mm=0.35, sharpen=0.0, noise_correlation_mm=0.6),
    "sharp": ReconstructionKernel(blur_mm=0.0, sharpen=0.6, noise_correlation_mm=0.3),
    "very_sharp": ReconstructionKernel(blur_mm=0.0, sharpen=1.6, noise_correlation_mm=0.0),
}
#: Radius (sigma, mm) of the unsharp mask's low-pass.
_SHARPEN_SIGMA_MM = 1.2


@dataclasses.dataclass(frozen=True)
class Acquisition:
    """One simulated scanner and protocol.

    Attributes:
        slice_thickness_mm: Slab integrated by each slice (mm).
        slice_spacing_mm: Distance between slices along their normal (mm); differs from the
            thickness for overlapping (smaller) or gapped (larger) protocols.
        tilt_deg: Gantry tilt (degrees, either sign).
        inplane_mm: Pixel size (mm).
        kernel: Name in :data:`KERNELS`.
        noise_hu: Standard deviation (HU) of the added noise at 5 mm slices.
        beam_hardening: Strength 0..1 of the skull-base artefacts.
        hu_offset: Calibration offset (HU) added to tissue.
        hu_gain: Calibration gain error (fraction) of tissue HU.
        cut_vertex_mm: Head top not covered by the slices (mm).
        cut_base_mm: Head bottom not covered by the slices (mm).
    """

    slice_thickness_mm: float = 1.5
    slice_spacing_mm: float = 1.5
    tilt_deg: float = 0.0
    inplane_mm: float = 0.5
    kernel: str = "standard"
    noise_hu: float = 0.0
    beam_hardening: float = 0.0
    hu_offset: float = 0.0
    hu_gain: float = 0.0
    cut_vertex_mm: float = 0.0
    cut_base_mm: float = 0.0

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise UsageError(f"Unknown reconstruction kernel '{self.kernel}'; use one of {', '.join(KERNELS)}.")
        if min(self.slice_thickness_mm, self.slice_spacing_mm, self.inplane_mm) <= 0:
            raise UsageError("Slice thickness, slice spacing and pixel size must be > 0 mm.")
        if abs(self.tilt_deg) >= 45:
            raise UsageError("The gantry tilt must be below 45 degrees.")

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready numbers (rounded)."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass(frozen=True)
class AcquisitionRanges:
    """Where :func:`sample_acquisition` draws from.

    Attributes:
        thickness_mm: Slice thickness range (uniform).
        spacing_ratio: Slice spacing / thickness range (uniform; spacing at least 0.5 mm).
        tilt_deg: Tilt magnitude range (uniform; sign random).
        untilted_fraction: Share of scans without tilt (most modern helical scans).
        inplane_mm: Pixel size range.
        kernels: Kernel names (uniform).
        noise_hu: Noise standard deviation at 5 mm.
        beam_hardening: Strength range.
        hu_offset: Calibration offset range (HU).
        hu_gain: Calibration gain range.
        cut_vertex_mm: Vertex cut range (mm).
        cut_base_mm: Skull-base cut range (mm).
        excluded: ``(tilt_deg, thickness_mm)`` corner left out: scans at least this tilted AND at
            least this thick are redrawn (kept for held-out tests); None for none.
    """

    thickness_mm: tuple[float, float] = (0.6, 7.5)
    spacing_ratio: tuple[float, float] = (0.6, 1.25)
    tilt_deg: tuple[float, float] = (0.0, 25.0)
    untilted_fraction: float = 0.4
    inplane_mm: tuple[float, float] = (0.4, 1.0)
    kernels: tuple[str, ...] = ("soft", "standard", "sharp")
    noise_hu: tuple[float, float] = (1.5, 6.0)
    beam_hardening: tuple[float, float] = (0.0, 1.0)
    hu_offset: tuple[float, float] = (-6.0, 6.0)
    hu_gain: tuple[float, float] = (-0.02, 0.02)
    cut_vertex_mm: tuple[float, float] = (0.0, 20.0)
    cut_base_mm: tuple[float, float] = (0.0, 30.0)
    excluded: tuple[float, float] | None = (18.0, 5.0)

    def covers(self, acquisition: Acquisition) -> bool:
        """Whether ``acquisition`` could have been drawn from these ranges (geometry and kernel)."""

        def within(value: float, bounds: tuple[float, float]) -> bool:
            return bounds[0] - 1e-6 <= value <= bounds[1] + 1e-6

        tilt = abs(acquisition.tilt_deg)
        in_corner = self.excluded is not None and (
            tilt >= self.excluded[0] and acquisition.slice_thickness_mm >= self.excluded[1]
        )
        return (
            within(acquisition.slice_thickness_mm, self.thickness_mm)
            and (tilt == 0 or within(tilt, self.tilt_deg))
            and within(acquisition.inplane_mm, self.inplane_mm)
            and acquisition.kernel in self.kernels
            and not in_corner
        )

    def to_dict(self) -> dict[str, Any]:
        """The ranges (tuples, written to JSON as lists)."""
        return dataclasses.asdict(self)


#: What the demo models are trained on: every range of issue 15 except the thick-and-tilted corner.
TRAINING_ACQUISITIONS = AcquisitionRanges()

#: Held-out scanners: thick (5-7.5 mm) AND strongly tilted (18-25 degrees), half of them with the
#: very sharp kernel that training never sees. No training scan lies in this corner.
HELD_OUT_ACQUISITIONS = AcquisitionRanges(
    thickness_mm=(5.0, 7.5),
    tilt_deg=(18.0, 25.0),
    untilted_fraction=0.0,
    kernels=("very_sharp", "standard"),
    excluded=None,
)


def sample_acquisition(rng: np.random.Generator, ranges: AcquisitionRanges = TRAINING_ACQUISITIONS) -> Acquisition:
    """Draw one acquisition from ``ranges`` (redrawing the excluded corner)."""
    for _ in range(1000):
        thickness = float(rng.uniform(*ranges.thickness_mm))
        tilt = 0.0
        if rng.random() >= ranges.untilted_fraction:
            tilt = float(rng.uniform(*ranges.tilt_deg)) * float(rng.choice([-1.0, 1.0]))
        if ranges.excluded is not None and abs(tilt) >= ranges.excluded[0] and thickness >= ranges.excluded[1]:
            continue
        return Acquisition(
            slice_thickness_mm=thickness,
            slice_spacing_mm=max(0.5, thickness * float(rng.uniform(*ranges.spacing_ratio))),
            tilt_deg=tilt,
            inplane_mm=float(rng.uniform(*ranges.inplane_mm)),
            kernel=str(rng.choice(list(ranges.kernels))),
            noise_hu=float(rng.uniform(*ranges.noise_hu)),
            beam_hardening=float(rng.uniform(*ranges.beam_hardening)),
            hu_offset=float(rng.uniform(*ranges.hu_offset)),
            hu_gain=float(rng.uniform(*ranges.hu_gain)),
            cut_vertex_mm=float(rng.uniform(*ranges.cut_vertex_mm)),
            cut_base_mm=float(rng.uniform(*ranges.cut_base_mm)),
        )
    raise UsageError("The acquisition ranges leave nothing outside their excluded corner.")


@dataclasses.dataclass(frozen=True)
class _Frame:
    """The tilted slice frame (LPS unit vectors) and the sheared stack's placement."""

    row: np.ndarray
    col: np.ndarray
    normal: np.ndarray
    origin: np.ndarray  # pixel (0, 0) of the first slice
    size: tuple[int, int]  # (nx, ny)
    depths: np.ndarray  # along the normal, from the first slice (mm)
    lateral_mm: np.ndarray  # (n,) shift of each slice along col (the shear)


def _frame(ct: sitk.Image, acquisition: Acquisition, pose: Pose | None) -> _Frame:
    tilt = math.radians(acquisition.tilt_deg)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, math.cos(tilt), -math.sin(tilt)])
    normal = np.cross(row, col)
    points = _head_points(ct)
    if pose is not None:  # the pose maps output points to source points: place the head with its inverse
        points = _place(points, pose)
    u, v, w = points @ row, points @ col, points @ normal
    margin = 8.0
    first = float(w.min()) + acquisition.cut_base_mm
    last = float(w.max()) - acquisition.cut_vertex_mm
    if last <= first:
        last = first
    count = int(math.floor((last - first) / acquisition.slice_spacing_mm)) + 1
    depths = acquisition.slice_spacing_mm * np.arange(count)
    # The table moves along LPS +z: per mm along the normal, a slice shifts -tan(t) mm along col.
    lateral = -depths * math.tan(tilt)
    # slice k's grid starts at v_start + lateral[k] along col: wide enough to cover the head in every slice
    v_start = float(v.min()) - margin - float(lateral.max())
    v_extent = float(v.max() - v.min()) + 2 * margin + float(lateral.max() - lateral.min())
    u_start, u_extent = float(u.min()) - margin, float(u.max() - u.min()) + 2 * margin
    nx = int(math.ceil(u_extent / acquisition.inplane_mm)) + 1
    ny = int(math.ceil(v_extent / acquisition.inplane_mm)) + 1
    origin = u_start * row + v_start * col + first * normal
    return _Frame(row, col, normal, origin, (nx, ny), depths, lateral)


def _place(source_points: np.ndarray, pose: Pose) -> np.ndarray:
    """Where the pose puts source points in the scanner: its inverse, ``A^-1 (q - c - t) + c``, for all at once."""
    matrix = np.asarray(pose.GetMatrix()).reshape(3, 3)
    center, translation = np.asarray(pose.GetCenter()), np.asarray(pose.GetTranslation())
    return np.linalg.solve(matrix, (source_points - center - translation).T).T + center


def _head_points(ct: sitk.Image, step: int = 4) -> np.ndarray:
    """LPS points (mm) of head voxels (above -300 HU), on every ``step``-th voxel."""
    array = sitk.GetArrayViewFromImage(ct)[::step, ::step, ::step]
    index = np.argwhere(array > -300.0)
    if index.size == 0:
        raise UsageError("The CT shows no head (nothing above -300 HU) to scan.")
    ijk = index[:, ::-1].astype(np.float64) * step
    direction = np.asarray(ct.GetDirection()).reshape(3, 3)
    return np.asarray(ct.GetOrigin()) + (ijk * np.asarray(ct.GetSpacing())) @ direction.T


def _slab_reference(frame: _Frame, k: int, acquisition: Acquisition, planes: int) -> sitk.Image:
    """The sub-planes integrating slice k: an image ``(nx, ny, planes)`` in the tilted frame."""
    step = acquisition.slice_thickness_mm / planes
    offset = -acquisition.slice_thickness_mm / 2 + step / 2
    origin = frame.origin + (frame.depths[k] + offset) * frame.normal + frame.lateral_mm[k] * frame.col
    reference = sitk.Image([frame.size[0], frame.size[1], planes], sitk.sitkUInt8)
    reference.SetSpacing((acquisition.inplane_mm, acquisition.inplane_mm, step))
    reference.SetOrigin(tuple(float(x) for x in origin))
    reference.SetDirection(tuple(float(x) for x in np.column_stack([frame.row, frame.col, frame.normal]).ravel()))
    return reference


def _majority(labels: np.ndarray) -> np.ndarray:
    """Per pixel, the label most sub-planes hold: ``(planes, ny, nx)`` -> ``(ny, nx)`` uint8."""
    if labels.shape[0] == 1 or not labels.any():
        return labels[labels.shape[0] // 2].astype(np.uint8)
    classes = int(labels.max()) + 1
    counts = np.stack([(labels == c).sum(axis=0) for c in range(classes)])
    return counts.argmax(axis=0).astype(np.uint8)


def _in_plane_filter(stack: np.ndarray, sigma_mm: float, pixel_mm: float) -> np.ndarray:
    """Gaussian blur of every slice of ``(n, ny, nx)`` (in-plane only)."""
    if sigma_mm <= 0:
        return stack
    image = sitk.GetImageFromArray(stack.astype(np.float32))
    image.SetSpacing((pixel_mm, pixel_mm, 1.0))
    variance = (sigma_mm**2, sigma_mm**2, 0.0)
    return sitk.GetArrayFromImage(sitk.DiscreteGaussian(image, variance, 32, 0.01, True))


def _reconstruct(stack: np.ndarray, kernel: ReconstructionKernel, pixel_mm: float) -> np.ndarray:
    """The kernel's blur, then its edge enhancement."""
    out = _in_plane_filter(stack, kernel.blur_mm, pixel_mm)
    if kernel.sharpen > 0:
        out = out + kernel.sharpen * (out - _in_plane_filter(out, _SHARPEN_SIGMA_MM, pixel_mm))
    return out


def _noise(shape: tuple[int, ...], acquisition: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Kernel-shaped noise with the dose level's standard deviation at this thickness."""
    if acquisition.noise_hu <= 0:
        return np.zeros(shape, dtype=np.float32)
    kernel = KERNELS[acquisition.kernel]
    field = rng.standard_normal(shape, dtype=np.float32)
    field = _in_plane_filter(field, kernel.noise_correlation_mm, acquisition.inplane_mm)
    if kernel.sharpen > 0:
        field = field + kernel.sharpen * (field - _in_plane_filter(field, _SHARPEN_SIGMA_MM, acquisition.inplane_mm))
    field /= max(float(field.std()), 1e-6)
    scale = min(3.0, math.sqrt(_NOISE_REFERENCE_MM / max(acquisition.slice_thickness_mm, 0.5)))
    return (acquisition.noise_hu * scale * field).astype(np.float32)


def _beam_hardening(stack: np.ndarray, acquisition: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Additive skull-base artefacts: the dark band between the two largest dense bones of a slice
    and streaks radiating from them, fading with distance; only in the lowest 40 % of the slices
    (skull base, posterior fossa) and only where they hold dense bone."""
    strength = acquisition.beam_hardening
    artefact = np.zeros_like(stack, dtype=np.float32)
    if strength <= 0:
        return artefact
    pixel = acquisition.inplane_mm
    ny, nx = stack.shape[1:]
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float32) * pixel
    band_hu = float(rng.uniform(15.0, 45.0)) * strength
    streak_hu = float(rng.uniform(5.0, 20.0)) * strength
    angles = rng.uniform(0, np.pi, 6)
    min_area_px = 40.0 / pixel**2  # 40 mm^2 of dense bone
    for k in range(int(math.ceil(0.4 * stack.shape[0]))):
        dense = stack[k] > _DENSE_BONE_HU
        if dense.sum() < min_area_px:
            continue
        components = sitk.GetArrayFromImage(
            sitk.RelabelComponent(
                sitk.ConnectedComponent(sitk.GetImageFromArray(dense.astype(np.uint8))), int(min_area_px)
            )
        )
        centres = [np.argwhere(components == c).mean(axis=0) * pixel for c in (1, 2) if (components == c).any()]
        for cy, cx in centres:
            distance = np.hypot(yy - cy, xx - cx)
            fade = np.exp(-distance / 40.0)
            for n, angle in enumerate(angles):
                across = np.abs((xx - cx) * np.sin(angle) - (yy - cy) * np.cos(angle))
                artefact[k] += (1 if n % 2 else -1) * streak_hu * np.exp(-((across / 1.2) ** 2)) * fade
        if len(centres) == 2:
            (y0, x0), (y1, x1) = centres
            length = max(math.hypot(y1 - y0, x1 - x0), 1e-3)
            along = ((xx - x0) * (x1 - x0) + (yy - y0) * (y1 - y0)) / length
            across = np.abs((xx - x0) * (y1 - y0) - (yy - y0) * (x1 - x0)) / length
            inside = (along > 0) & (along < length)
            artefact[k] -= band_hu * np.exp(-((across / 4.0) ** 2)) * inside
    return artefact


def simulate_acquisition(
    ct: sitk.Image,
    labels: sitk.Image | None,
    acquisition: Acquisition,
    rng: np.random.Generator,
    pose: Pose | None = None,
) -> tuple[sitk.Image, sitk.Image | None]:
    """Scan ``ct`` (HU) and its labels with ``acquisition``.

    Args:
        ct: The source head CT in HU (thin slices).
        labels: Its uint8 label map on the same grid, or None.
        acquisition: The scanner and protocol.
        rng: Random source (noise, artefact placement).
        pose: Optional transform mapping scanner points to source points (head pose, size, shape).

    Returns:
        ``(image, labels)``: an int16 HU image on the regularised grid of the tilted stack
        (spacing ``(inplane, inplane, slice_spacing)``, direction = the tilted frame) and the uint8
        labels on the same grid (None when ``labels`` is None).
    """
    frame = _frame(ct, acquisition, pose)
    planes = max(1, math.ceil(acquisition.slice_thickness_mm / _SUB_PLANE_MM))
    transform = pose if pose is not None else sitk.Transform()
    source = sitk.Cast(ct, sitk.sitkFloat32)
    n = len(frame.depths)
    nx, ny = frame.size
    slices = np.empty((n, ny, nx), dtype=np.float32)
    label_slices = np.zeros((n, ny, nx), dtype=np.uint8) if labels is not None else None
    for k in range(n):
        reference = _slab_reference(frame, k, acquisition, planes)
        slab = sitk.Resample(source, reference, transform, sitk.sitkLinear, _AIR_HU, sitk.sitkFloat32)
        slices[k] = sitk.GetArrayViewFromImage(slab).mean(axis=0)
        if labels is not None and label_slices is not None:
            sampled = sitk.Resample(labels, reference, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
            label_slices[k] = _majority(sitk.GetArrayViewFromImage(sampled))

    tissue = slices > -500.0
    scanned = _reconstruct(slices, KERNELS[acquisition.kernel], acquisition.inplane_mm)
    scanned = scanned + _beam_hardening(slices, acquisition, rng) * tissue
    scanned = scanned + _noise(scanned.shape, acquisition, rng)
    scanned = np.where(tissue, scanned * (1.0 + acquisition.hu_gain) + acquisition.hu_offset, scanned)

    placement = SlicePlacement(
        origin=frame.origin,
        row=frame.row,
        col=frame.col,
        normal=frame.normal,
        pixel_spacing=(acquisition.inplane_mm, acquisition.inplane_mm),
        size=frame.size,
        depths=frame.depths,
        lateral=np.column_stack([np.zeros_like(frame.lateral_mm), frame.lateral_mm]),
    )
    tolerance = max(0.01, 0.01 * acquisition.slice_spacing_mm)
    image = regularize_stack(placement, lambda k: scanned[k], acquisition.slice_spacing_mm, tolerance, fill=_AIR_HU)
    hu = np.clip(np.rint(sitk.GetArrayViewFromImage(image)), -1024, 3071).astype(np.int16)
    out = sitk.GetImageFromArray(hu)
    out.CopyInformation(image)
    if labels is None or label_slices is None:
        return out, None
    return out, _regularized_labels(placement, label_slices, acquisition, tolerance, out)


def _regularized_labels(
    placement: SlicePlacement, label_slices: np.ndarray, acquisition: Acquisition, tolerance: float, grid: sitk.Image
) -> sitk.Image:
    """Labels through the same regularisation: each class's indicator, then the strongest class (>= 0.5)."""
    best = np.full(grid.GetSize()[::-1], 0.5, dtype=np.float32)
    result = np.zeros(grid.GetSize()[::-1], dtype=np.uint8)
    for value in (int(v) for v in np.unique(label_slices) if v):
        indicator = (label_slices == value).astype(np.float32)
        share = sitk.GetArrayFromImage(
            regularize_stack(placement, indicator.__getitem__, acquisition.slice_spacing_mm, tolerance, fill=0.0)
        )
        stronger = share > best
        result[stronger] = value
        best = np.maximum(best, share)
    image = sitk.GetImageFromArray(result)
    image.CopyInformation(grid)
    return image

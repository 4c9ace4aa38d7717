"""The registration pipeline on SimpleITK images: normalise, align linearly, optimise a dense field, export.

:func:`register` takes a fixed and a moving image in any physical placement (LPS, mm) and returns
one ITK displacement field on the fixed grid that contains the whole mapping (linear and
deformable): ``moving_point = fixed_point + d(fixed_point)``. That field is what
``sitk.DisplacementFieldTransform``, ANTs (``antsApplyTransforms``) and 3D Slicer (a grid
transform) apply identically.

Stages and where their time goes (the report lists each):

1. intensity normalisation (robust 0.5-99.5 % percentiles to 0..1);
2. working grid: the fixed grid, or a coarser one when the image exceeds ``max_voxels``;
3. linear: centre of mass / moments, rigid, affine (:mod:`.affine`);
4. the moving image resampled once onto the working grid through the linear transform, and an
   overlap check (too little shared field of view is an :class:`InputError`, not a bad result);
5. deformable instance optimisation (:mod:`.instance_optimization`) on the torch device;
6. the voxel field turned into LPS millimetres, composed with the linear transform and
   evaluated (similarity before/after, % |J| <= 0, std log |J|).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import ImageGeometry, physical_overlap, resample_to_reference, same_grid
from SlicerMedFuse.nets.warping import resize_displacement, warp
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.registration.affine import register_affine
from SlicerMedFuse.registration.initial_field import deformable_from_total
from SlicerMedFuse.registration.instance_optimization import optimize_displacement
from SlicerMedFuse.registration.presets import RegistrationSettings, load_preset, settings_from_parameters
from SlicerMedFuse.registration.regularizers import jacobian_stats
from SlicerMedFuse.registration.similarity import make_similarity
from SlicerMedFuse.registration.transforms import displacement_field_image, displacement_transform

__all__ = ["RegistrationResult", "normalize_intensity", "register", "working_geometry"]

_log = logging.getLogger("SlicerMedFuse")


@dataclasses.dataclass
class RegistrationResult:
    """What :func:`register` returns.

    Attributes:
        displacement: ``sitkVectorFloat64`` image on the fixed grid, LPS mm, fixed point -> moving
            point offset (linear and deformable parts together).
        linear: the linear transform alone (fixed LPS -> moving LPS).
        report: similarity before/after, Jacobian statistics, timings per stage, grids.
    """

    displacement: sitk.Image
    linear: sitk.AffineTransform
    report: dict[str, Any]

    def transform(self) -> sitk.DisplacementFieldTransform:
        """The result as a ``sitk.DisplacementFieldTransform`` (write it with ``sitk.WriteTransform`` as .h5)."""
        return displacement_transform(self.displacement)


def normalize_intensity(
    image: sitk.Image, mask: sitk.Image | None = None, low: float = 0.5, high: float = 99.5
) -> sitk.Image:
    """Float32 copy of ``image`` mapped linearly from its ``low``..``high`` percentiles to 0..1 and clipped.

    Percentiles are taken inside ``mask`` when given. A constant image raises :class:`InputError`.
    """
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    values = array[sitk.GetArrayViewFromImage(mask) > 0] if mask is not None else array
    if values.size == 0:
        raise InputError("A mask is empty (no voxel > 0); draw the region or leave the mask out.")
    lo, hi = np.percentile(values[:: max(1, values.size // 2_000_000)], [low, high])
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        raise InputError("An input image has the same value everywhere inside its mask; check the image and mask.")
    # float32 scalars: numpy's percentiles are float64 and would promote the whole volume
    scale, shift = np.float32(1.0 / (hi - lo)), np.float32(lo)
    normalized = sitk.GetImageFromArray(np.clip((array - shift) * scale, 0.0, 1.0))
    normalized.CopyInformation(image)
    return normalized


def working_geometry(fixed: sitk.Image, max_voxels: int) -> ImageGeometry:
    """The fixed grid, or the same extent and direction with larger voxels when it has more than ``max_voxels``."""
    geometry = ImageGeometry.from_image(fixed)
    count = float(np.prod(geometry.size))
    if count <= max_voxels:
        return geometry
    factor = (count / max_voxels) ** (1.0 / 3.0)
    spacing = np.asarray(geometry.spacing) * factor
    size = np.maximum(np.round(np.asarray(geometry.size) * np.asarray(geometry.spacing) / spacing), 2).astype(int)
    spacing = np.asarray(geometry.size) * np.asarray(geometry.spacing) / size
    shift = geometry.direction_matrix @ (0.5 * (spacing - np.asarray(geometry.spacing)))
    _log.warning(
        "The fixed image has %d voxels, more than max_voxels=%d: registering on a coarser %s grid (%.2f mm voxels); "
        "the result is still written on the full fixed grid.",
        int(count),
        max_voxels,
        "x".join(str(int(s)) for s in size),
        float(spacing.max()),
    )
    return ImageGeometry(
        tuple(int(s) for s in size), tuple(spacing), tuple(np.asarray(geometry.origin) + shift), geometry.direction
    )


def _resample(
    image: sitk.Image, grid: ImageGeometry, transform: sitk.Transform | None = None, interpolation: str = "linear"
) -> sitk.Image:
    """Resample onto ``grid``, Gaussian-smoothing first where the image is much finer than the grid (anti-aliasing)."""
    source_spacing = np.asarray(image.GetSpacing())
    target = min(grid.spacing)
    if interpolation == "linear" and np.any(source_spacing < 0.75 * target):
        sigma = [0.5 * float(np.sqrt(max(target**2 - s**2, 0.0))) for s in source_spacing]
        image = sitk.Cast(image, sitk.sitkFloat32)
        # axis by axis: an axis already as coarse as the grid gets no smoothing (sigma 0 is an ITK error)
        for axis, axis_sigma in enumerate(sigma):
            if axis_sigma > 0.0:
                image = sitk.RecursiveGaussian(
                    image, axis_sigma, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis
                )
    return resample_to_reference(image, grid, interpolation=interpolation, transform=transform, default_value=0.0)


def _tensor(image: sitk.Image, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32, copy=False))[None, None].to(device)


def _check_inputs(
    fixed: sitk.Image, moving: sitk.Image, fixed_mask: sitk.Image | None, moving_mask: sitk.Image | None
) -> None:
    for role, image in (("fixed", fixed), ("moving", moving)):
        if image.GetDimension() != 3:
            raise InputError(
                f"The {role} image is {image.GetDimension()}D; registration needs two 3D volumes (fixed is "
                f"{fixed.GetDimension()}D, moving is {moving.GetDimension()}D)."
            )
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise InputError(
                f"The {role} image has {image.GetNumberOfComponentsPerPixel()} values per voxel; give a scalar image."
            )
    for role, mask, image in (("fixed_mask", fixed_mask, fixed), ("moving_mask", moving_mask, moving)):
        if mask is None:
            continue
        if not same_grid(mask, image):
            raise InputError(f"Input '{role}' is not on the voxel grid of its image; resample it onto the image first.")
        if not np.any(sitk.GetArrayViewFromImage(mask) > 0):
            raise InputError(f"Input '{role}' is empty (no voxel > 0); draw the region or leave the mask out.")


def _total_displacement(u: torch.Tensor, linear: sitk.AffineTransform, grid: ImageGeometry) -> np.ndarray:
    """``d(x) = M (x + P u(x)) + b - x`` for every fixed voxel ``x``, with the linear map ``x -> M x + b``.

    Args:
        u: ``(1, 3, D, H, W)`` deformable displacement in voxel units of ``grid`` (the fixed grid).
        linear: fixed -> moving linear transform.
        grid: the fixed grid; ``P = direction @ diag(spacing)`` turns voxels into LPS mm.

    Returns:
        ``(D, H, W, 3)`` float64 total displacement in LPS mm.
    """
    matrix = np.asarray(linear.GetMatrix()).reshape(3, 3)
    centre, translation = np.asarray(linear.GetCenter()), np.asarray(linear.GetTranslation())
    offset = centre + translation - matrix @ centre
    index_to_lps = grid.ijk_to_lps()
    change = (matrix - np.eye(3)) @ index_to_lps[:3, :3]  # total displacement change per voxel step along i, j, k
    constant = (matrix - np.eye(3)) @ index_to_lps[:3, 3] + offset
    as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=u.device)  # noqa: E731
    shape = u.shape[2:]
    total = (as_tensor(matrix @ index_to_lps[:3, :3]) @ u[0].reshape(3, -1)).reshape(3, *shape)
    total += as_tensor(constant).view(3, 1, 1, 1)
    for axis, dim in enumerate((3, 2, 1)):  # i -> W, j -> H, k -> D of the (3, D, H, W) tensor
        view = [3, 1, 1, 1]
        view[dim] = shape[dim - 1]
        total += (
            as_tensor(change[:, axis])[:, None] * torch.arange(shape[dim - 1], dtype=torch.float32, device=u.device)
        ).view(view)
    return total.permute(1, 2, 3, 0).cpu().numpy().astype(np.float64)


def _similarity_values(
    metric: str,
    window: int,
    fixed: torch.Tensor,
    moving_linear: torch.Tensor,
    u: torch.Tensor,
    before: torch.Tensor,
    weight: torch.Tensor | None,
) -> dict[str, float]:
    """Similarity before registration, after the linear stage and after the deformable one.

    Computed at half the working grid's resolution (area-averaged images, the field resampled and
    the moving image warped there) to save time; ``before`` is already on that half grid.
    LNCC is reported as the mean squared local correlation (higher is better), MIND and MSE as the
    loss (lower is better).
    """
    shape = tuple(before.shape[2:])
    half = lambda volume: F.interpolate(volume, size=shape, mode="area")  # noqa: E731
    moving_half = half(moving_linear)
    images = {"before": before, "after_linear": moving_half, "after": warp(moving_half, resize_displacement(u, shape))}
    term = make_similarity(metric, half(fixed), window=window)
    with torch.no_grad():
        values = {
            name: float(term(term.features(image), None if weight is None else half(weight)))
            for name, image in images.items()
        }
    return {name: (-value if metric == "lncc" else value) for name, value in values.items()}


def register(
    fixed: sitk.Image,
    moving: sitk.Image,
    parameters: Mapping[str, Any] | RegistrationSettings | None = None,
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    initial_transform: sitk.Transform | None = None,
    initial_displacement: sitk.Image | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> RegistrationResult:
    """Register ``moving`` to ``fixed`` (any modalities, any placement in LPS space).

    Args:
        fixed: 3D scalar image; the result lives on its grid.
        moving: 3D scalar image.
        parameters: a full parameter mapping (e.g. ``load_preset("fast") | overrides``), ready
            :class:`RegistrationSettings`, or None for the ``fast`` preset.
        fixed_mask, moving_mask: optional masks (> 0 inside) on their image's grid; only voxels
            inside count for the similarity.
        initial_transform: optional linear transform (fixed -> moving) replacing the initialisation.
        initial_displacement: optional whole-transform field (LPS mm, fixed -> moving, like
            ``RegistrationResult.displacement``, e.g. a learned model's prediction) the deformable stage
            starts from, re-expressed after this run's linear stage (:mod:`.initial_field`); in
            diffeomorphic mode it starts the velocity (first-order: exact for small fields).
        device: torch device for the optimisation.
        progress: where progress goes (stages ``linear``, ``deformable``, ...); its cancel event
            stops the registration (:class:`~SlicerMedFuse.errors.Cancelled`).

    Returns:
        A :class:`RegistrationResult`.

    Raises:
        InputError: non-3D or vector images, empty masks, masks off their image's grid, or too
            little overlap between the images after the linear stage.
    """
    if parameters is None:
        parameters = load_preset("fast")
    settings = parameters if isinstance(parameters, RegistrationSettings) else settings_from_parameters(parameters)
    progress = progress or Progress()
    device = torch.device(device)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    _check_inputs(fixed, moving, fixed_mask, moving_mask)
    raw_overlap = physical_overlap(fixed, moving)
    if raw_overlap == 0.0 and settings.linear.initialization in ("none",) and initial_transform is None:
        raise InputError(
            "The fixed and moving images do not overlap in physical space and initialization is 'none'; "
            "use initialization 'com' (centre of mass) or give an initial transform."
        )
    if raw_overlap < settings.min_overlap:
        _log.info(
            "The image boxes overlap by %.0f %% before alignment; the initialisation brings them together.",
            100 * raw_overlap,
        )
    fixed_n = normalize_intensity(fixed, fixed_mask)
    moving_n = normalize_intensity(moving, moving_mask)
    grid = working_geometry(fixed, settings.max_voxels)
    lap("normalize")
    progress.update(0.02, "linear")

    linear_result = register_affine(
        fixed_n,
        moving_n,
        settings.linear,
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        initial=initial_transform,
        device=device,
        progress=progress.span(0.02, 0.15),
    )
    linear = linear_result.transform
    lap("linear")
    progress.update(0.15, "resampling")

    fixed_w = _resample(fixed_n, grid) if not same_grid(fixed_n, grid) else fixed_n
    # the similarity before/after is reported at half the working resolution (area-averaged)
    half_shape = tuple(max(4, n // 2) for n in grid.size[::-1])
    moving_before = F.interpolate(_tensor(_resample(moving_n, grid), device), size=half_shape, mode="area")
    moving_linear = _resample(moving_n, grid, linear)
    ones = (
        sitk.Cast(moving_mask > 0, sitk.sitkFloat32)
        if moving_mask is not None
        else sitk.Cast(moving_n * 0 + 1, sitk.sitkFloat32)
    )
    coverage = resample_to_reference(ones, grid, interpolation="linear", transform=linear, default_value=0.0)
    fixed_t, moving_t = _tensor(fixed_w, device), _tensor(moving_linear, device)
    coverage_t = _tensor(coverage, device)
    fixed_weight = (
        _tensor(resample_to_reference(sitk.Cast(fixed_mask > 0, sitk.sitkFloat32), grid, default_value=0.0), device)
        if fixed_mask is not None
        else None
    )
    foreground = fixed_weight if fixed_weight is not None else (fixed_t > 0.05).float()
    overlap = float((coverage_t * foreground).sum() / foreground.sum().clamp_min(1.0))
    if overlap < settings.min_overlap:
        raise InputError(
            f"After the linear stage only {100 * overlap:.0f} % of the fixed image's foreground lies inside the moving "
            f"image (at least {100 * settings.min_overlap:.0f} % is needed); check that both images show the same anatomy, "
            "or give an initial transform."
        )
    # the moving field of view only needs tracking when part of the fixed foreground falls outside it
    outside = float(((1.0 - coverage_t) * foreground).sum() / foreground.sum().clamp_min(1.0))
    moving_weight = coverage_t if outside > 1e-3 or moving_mask is not None else None
    lap("resample")

    grid_spacing = grid.spacing
    if settings.deformable is not None:
        deformable = optimize_displacement(
            fixed_t,
            moving_t,
            settings.deformable,
            spacing=grid_spacing,
            fixed_mask=fixed_weight,
            moving_mask=moving_weight,
            initial=None
            if initial_displacement is None
            else deformable_from_total(initial_displacement, linear, grid, device),
            progress=progress.span(0.15, 0.9),
        )
        u = deformable.displacement
        # the output field interpolates the finest level's: its Jacobians there cost a fraction
        finest = deformable.finest_displacement
        finest_shape = tuple(finest.shape[2:])
        level_info = {
            "level_shapes": [list(s) for s in deformable.level_shapes],
            "level_seconds": [round(s, 3) for s in deformable.seconds],
        }
    else:
        u = torch.zeros((1, 3, *fixed_t.shape[2:]), device=device)
        finest, finest_shape = u[:, :, :2, :2, :2], (2, 2, 2)
        level_info = {}
    lap("deformable")
    progress.update(0.9, "composing")

    metric = settings.deformable.similarity if settings.deformable is not None else settings.linear.similarity
    similarity = _similarity_values(
        metric, settings.linear.lncc_window, fixed_t, moving_t, u, moving_before, fixed_weight
    )
    fixed_grid = ImageGeometry.from_image(fixed)
    # finest-level voxels -> LPS mm (the level spans the working grid's extent)
    level_spacing = np.asarray(grid.spacing) * np.asarray(grid.size) / np.asarray(finest_shape[::-1])
    to_mm = torch.as_tensor(grid.direction_matrix @ np.diag(level_spacing), dtype=torch.float32, device=device)
    max_displacement = float((to_mm @ finest[0].reshape(3, -1)).pow(2).sum(0).max().sqrt())
    # det of the whole map = det(M) det(I + grad u): the linear part shifts log|J| by a constant
    stats = jacobian_stats(finest)
    linear_det = float(np.linalg.det(np.asarray(linear.GetMatrix()).reshape(3, 3)))
    if linear_det <= 0:
        stats["folding_percent"] = 100.0 - stats["folding_percent"]
    stats["min_jacobian"] *= linear_det
    # the working grid spans the fixed grid's extent, so voxel fields resample exactly (align_corners=False)
    u_fixed = resize_displacement(u, fixed_grid.size[::-1])
    displacement = displacement_field_image(_total_displacement(u_fixed, linear, fixed_grid), fixed_grid)
    lap("compose")
    progress.update(1.0, "registered")

    matrix = np.asarray(linear.GetMatrix()).reshape(3, 3)
    report = {
        "similarity": {
            "metric": metric,
            "higher_is_better": metric == "lncc",
            **{k: round(v, 5) for k, v in similarity.items()},
        },
        "folding_percent": round(stats["folding_percent"], 5),
        "std_log_jacobian": round(stats["std_log_jacobian"], 5),
        "min_jacobian": round(stats["min_jacobian"], 5),
        "linear": {
            "matrix": matrix.round(6).tolist(),
            "translation_mm": [round(float(t), 4) for t in linear.GetTranslation()],
            "center_mm": [round(float(c), 4) for c in linear.GetCenter()],
            "losses": {k: round(v, 5) for k, v in linear_result.losses.items()},
        },
        "overlap_before_alignment": round(raw_overlap, 4),
        "overlap_after_linear": round(overlap, 4),
        "working_grid": {"size": list(grid.size), "spacing_mm": [round(s, 4) for s in grid.spacing]},
        "max_deformable_displacement_mm": round(max_displacement, 3),
        "jacobian_grid": list(finest_shape[::-1]),
        **level_info,
        "torch_device": str(device),
        "timings_s": timings,
    }
    return RegistrationResult(displacement=displacement, linear=linear, report=report)

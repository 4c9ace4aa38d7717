"""Dense displacement fields: warping, composition, scaling and squaring, and ITK export.

Conventions (all functions):

* Volumes are torch ``(B, C, D, H, W)`` tensors: ``D, H, W`` are SimpleITK's index axes
  ``k, j, i`` (``sitk.GetArrayFromImage`` order).
* A displacement ``u`` is ``(B, 3, D, H, W)`` in **voxel units of its grid**; channel c is the
  displacement along index axis c of ``(i, j, k)``, which is grid_sample's ``(x, y, z)`` order.
  It maps a point ``x`` of the fixed (output) grid to ``x + u(x)`` in the moving image, ITK's
  resampling convention.
* Sampling uses ``align_corners=False``: voxel centres sit at ``(2 i + 1) / n - 1`` in normalised
  coordinates, so fields and images at different resolutions of one extent stay consistent.
* Physical fields are ``(D, H, W, 3)`` numpy arrays or SimpleITK vector images in LPS millimetres,
  what ``sitk.DisplacementFieldTransform`` expects: it maps fixed points to moving points.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.geometry import ImageGeometry

__all__ = [
    "compose",
    "displacement_field_image",
    "displacement_to_physical",
    "displacement_transform",
    "identity_grid",
    "integrate_velocity",
    "physical_to_displacement",
    "resize_displacement",
    "to_normalized",
    "resample_labels",
    "sampling_grid",
    "warp",
    "warp_labels",
]


def _check_field(u: torch.Tensor) -> None:
    if u.dim() != 5 or u.shape[1] != 3:
        raise ValueError(f"displacement must be a (B, 3, D, H, W) tensor, got shape {tuple(u.shape)}")


def identity_grid(
    shape: Sequence[int], *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Normalised sampling grid of the identity for ``shape = (D, H, W)``: ``(1, D, H, W, 3)`` in (x, y, z) order.

    The last few grids are cached (every warp of an optimisation loop needs the same one); treat
    the result as read-only.
    """
    return _identity_grid(tuple(int(n) for n in shape), str(torch.device(device)), dtype)


@functools.lru_cache(maxsize=4)
def _identity_grid(shape: tuple[int, ...], device: str, dtype: torch.dtype) -> torch.Tensor:
    theta = torch.eye(3, 4, device=device, dtype=dtype).unsqueeze(0)
    return F.affine_grid(theta, [1, 1, *shape], align_corners=False)


def to_normalized(u: torch.Tensor) -> torch.Tensor:
    """Voxel-unit displacement ``(B, 3, D, H, W)`` -> grid_sample offsets ``(B, D, H, W, 3)``."""
    _check_field(u)
    d, h, w = u.shape[2:]
    scale = torch.tensor([2.0 / w, 2.0 / h, 2.0 / d], device=u.device, dtype=u.dtype)
    return u.permute(0, 2, 3, 4, 1) * scale


def warp(image: torch.Tensor, u: torch.Tensor, *, mode: str = "bilinear", padding_mode: str = "border") -> torch.Tensor:
    """Resample ``image`` at ``x + u(x)``: the moving image brought onto the fixed grid.

    Args:
        image: ``(B, C, D, H, W)`` volume on the same grid as ``u``.
        u: ``(B, 3, D, H, W)`` displacement in voxel units.
        mode: ``"bilinear"`` (trilinear in 3D) or ``"nearest"``.
        padding_mode: grid_sample's handling of points outside: ``"border"``, ``"zeros"`` or ``"reflection"``.

    Returns:
        ``(B, C, D, H, W)`` warped volume.
    """
    if image.shape[2:] != u.shape[2:]:
        raise ValueError(f"image grid {tuple(image.shape[2:])} and displacement grid {tuple(u.shape[2:])} differ")
    grid = identity_grid(u.shape[2:], device=u.device, dtype=u.dtype) + to_normalized(u)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def warp_labels(labels: torch.Tensor, u: torch.Tensor, *, method: str = "nearest", chunk: int = 8) -> torch.Tensor:
    """Warp an integer label map.

    Args:
        labels: ``(B, 1, D, H, W)`` integer labels on the grid of ``u``.
        u: ``(B, 3, D, H, W)`` displacement in voxel units.
        method: ``"nearest"`` (nearest neighbour) or ``"onehot"`` (label-aware: each label's
            indicator is warped trilinearly and every voxel takes the label with the largest
            weight, which keeps thin structures and smooth boundaries; processed ``chunk`` labels
            at a time so memory stays at a few volumes).
        chunk: labels per pass for ``"onehot"``.

    Returns:
        ``(B, 1, D, H, W)`` labels of the input dtype; outside the input the label is 0.
    """
    if method == "nearest":
        return warp(labels.float(), u, mode="nearest", padding_mode="zeros").round().to(labels.dtype)
    if method != "onehot":
        raise ValueError(f"method must be 'nearest' or 'onehot', got {method!r}")
    values = torch.unique(labels)
    grid = identity_grid(u.shape[2:], device=u.device, dtype=torch.float32) + to_normalized(u.float())
    best = torch.full_like(labels, 0, dtype=torch.float32)
    result = torch.zeros_like(labels)
    for start in range(0, len(values), chunk):
        group = values[start : start + chunk]
        indicators = (labels == group.view(1, -1, 1, 1, 1)).float()
        weights = F.grid_sample(indicators, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        top, where = weights.max(dim=1, keepdim=True)
        better = top > best
        best = torch.where(better, top, best)
        result = torch.where(better, group[where].to(labels.dtype), result)
    return result


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Displacement of ``phi_outer o phi_inner``: ``x -> x + inner(x) + outer(x + inner(x))``.

    Args:
        outer, inner: ``(B, 3, D, H, W)`` displacements in voxel units on one grid.
    """
    _check_field(outer)
    _check_field(inner)
    return inner + warp(outer, inner, padding_mode="border")


def integrate_velocity(v: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """Exponential of a stationary velocity field by scaling and squaring.

    ``u_0 = v / 2^steps``, then ``steps`` times ``u <- u o u`` (:func:`compose`). For a smooth
    velocity each small step is invertible, so the result is a diffeomorphism.

    Args:
        v: ``(B, 3, D, H, W)`` velocity in voxel units.
        steps: number of squarings (7 as in VoxelMorph-diff and the issue).
    """
    _check_field(v)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    u = v / (2**steps)
    for _ in range(steps):
        u = compose(u, u)
    return u


def resize_displacement(u: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Trilinearly resample a voxel-unit field to a grid of ``shape`` over the same extent, rescaling its units."""
    _check_field(u)
    shape = tuple(int(n) for n in shape)
    if tuple(u.shape[2:]) == shape:
        return u
    resized = F.interpolate(u, size=shape, mode="trilinear", align_corners=False)
    d, h, w = u.shape[2:]
    scale = torch.tensor([shape[2] / w, shape[1] / h, shape[0] / d], device=u.device, dtype=u.dtype)
    return resized * scale.view(1, 3, 1, 1, 1)


def displacement_to_physical(u: np.ndarray | torch.Tensor, geometry: ImageGeometry) -> np.ndarray:
    """Voxel-unit field on ``geometry``'s grid -> LPS millimetres.

    Args:
        u: ``(3, D, H, W)`` or ``(1, 3, D, H, W)`` displacement in voxel units of ``geometry``.
        geometry: the grid (spacing and direction; 3D).

    Returns:
        ``(D, H, W, 3)`` float64 array of LPS displacements in mm (``direction @ diag(spacing) @ u``).
    """
    array = u.detach().cpu().numpy() if isinstance(u, torch.Tensor) else np.asarray(u)
    if array.ndim == 5:
        if array.shape[0] != 1:
            raise ValueError(f"expected a batch of one field, got {array.shape[0]}")
        array = array[0]
    if array.shape[0] != 3 or tuple(array.shape[1:]) != tuple(geometry.size[::-1]):
        raise ValueError(f"field of shape {array.shape} does not match grid size {geometry.size} (i, j, k)")
    matrix = geometry.direction_matrix @ np.diag(geometry.spacing)  # voxel (i, j, k) -> LPS mm
    flat = array.reshape(3, -1).astype(np.float64, copy=False)
    return (matrix @ flat).T.reshape(*array.shape[1:], 3)


def physical_to_displacement(field: np.ndarray | sitk.Image, geometry: ImageGeometry | None = None) -> np.ndarray:
    """LPS-mm field -> ``(3, D, H, W)`` float64 field in voxel units of its grid (inverse of :func:`displacement_to_physical`).

    Args:
        field: a SimpleITK vector image (its own geometry is used) or a ``(D, H, W, 3)`` array with ``geometry``.
        geometry: the grid of an array ``field``.
    """
    if isinstance(field, sitk.Image):
        geometry = ImageGeometry.from_image(field)
        array = sitk.GetArrayViewFromImage(field)
    elif geometry is None:
        raise ValueError("geometry is needed for an array field")
    else:
        array = np.asarray(field)
    inverse = np.linalg.inv(geometry.direction_matrix @ np.diag(geometry.spacing))
    flat = array.reshape(-1, 3).astype(np.float64, copy=False)
    return (inverse @ flat.T).reshape(3, *array.shape[:3])


def displacement_field_image(field_lps: np.ndarray, geometry: ImageGeometry) -> sitk.Image:
    """A ``sitkVectorFloat64`` image on ``geometry`` holding an LPS-mm field ``(D, H, W, 3)``.

    This is the ITK displacement-field layout: NIfTI/NRRD files of it are read as displacement
    transforms by ITK, ANTs and 3D Slicer.
    """
    array = np.asarray(field_lps, dtype=np.float64)
    if array.shape != (*geometry.size[::-1], 3):
        raise ValueError(f"field of shape {array.shape} does not match grid size {geometry.size} (i, j, k) x 3")
    image = sitk.GetImageFromArray(array, isVector=True)
    return geometry.apply_to(image)


def displacement_transform(field: sitk.Image) -> sitk.DisplacementFieldTransform:
    """A ``sitk.DisplacementFieldTransform`` (fixed point -> moving point) from a displacement image.

    The image is copied (the transform takes ownership of its input) and cast to vector float64.
    Write it with ``sitk.WriteTransform(transform, "field.h5")`` for an ITK ``.h5`` transform file.
    """
    if field.GetNumberOfComponentsPerPixel() != field.GetDimension():
        raise ValueError(
            f"a {field.GetDimension()}D displacement field needs {field.GetDimension()} components per voxel"
        )
    copy = sitk.Cast(field, sitk.sitkVectorFloat64)
    return sitk.DisplacementFieldTransform(copy)


def sampling_grid(
    displacement: sitk.Image, moving: ImageGeometry, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """grid_sample coordinates in the *moving* image of every fixed voxel moved by a physical field.

    Args:
        displacement: LPS-mm displacement image on the fixed grid (fixed point -> moving point).
        moving: the moving image's grid.
        device: where the grid is built.

    Returns:
        ``(1, D, H, W, 3)`` float32 normalised ``(x, y, z)`` coordinates (``align_corners=False``)
        for sampling a ``(1, C, d, h, w)`` tensor of the moving image.
    """
    fixed = ImageGeometry.from_image(displacement)
    index_to_lps = fixed.ijk_to_lps()
    lps_to_moving = np.linalg.inv(moving.ijk_to_lps())
    # moving index = A (fixed_index_to_lps(ijk) + d) + a, folded into per-axis steps (float64 constants)
    step = lps_to_moving[:3, :3] @ index_to_lps[:3, :3]
    origin = lps_to_moving[:3, :3] @ index_to_lps[:3, 3] + lps_to_moving[:3, 3]
    size = torch.tensor(moving.size, dtype=torch.float64)
    scale = (1.0 / size).to(torch.float32).to(device)  # normalised = (2 idx + 1) / n - 1
    field = torch.from_numpy(sitk.GetArrayFromImage(displacement).astype(np.float32)).to(device)  # (D, H, W, 3) LPS
    grid = field @ torch.as_tensor(lps_to_moving[:3, :3].T, dtype=torch.float32, device=device)
    constant = torch.as_tensor(origin, dtype=torch.float32, device=device)
    grid += constant
    for axis, n in enumerate(fixed.size):
        shape = [1, 1, 1, 3]
        shape[2 - axis] = n
        ramp = torch.arange(n, dtype=torch.float32, device=device)[:, None] * torch.as_tensor(
            step[:, axis], dtype=torch.float32, device=device
        )
        grid += ramp.reshape(shape)
    grid = (2.0 * grid + 1.0) * scale - 1.0
    return grid.unsqueeze(0)


def resample_labels(
    labels: sitk.Image,
    displacement: sitk.Image,
    *,
    method: str = "onehot",
    chunk: int = 8,
    device: torch.device | str = "cpu",
) -> sitk.Image:
    """Warp a moving label map onto the fixed grid through a physical displacement field.

    Args:
        labels: integer label map on the moving grid.
        displacement: LPS-mm displacement image on the fixed grid (fixed point -> moving point).
        method: ``"nearest"`` (SimpleITK nearest neighbour) or ``"onehot"`` (label-aware: each
            label's indicator is interpolated trilinearly and the largest wins; ``chunk`` labels per pass).
        chunk: labels per pass for ``"onehot"``.
        device: torch device for ``"onehot"``.

    Returns:
        Labels on the fixed grid with the input pixel type; 0 outside the moving image.
    """
    if method == "nearest":
        transform = displacement_transform(displacement)
        grid = ImageGeometry.from_image(displacement)
        resampler = sitk.ResampleImageFilter()
        resampler.SetSize(grid.size)
        resampler.SetOutputSpacing(grid.spacing)
        resampler.SetOutputOrigin(grid.origin)
        resampler.SetOutputDirection(grid.direction)
        resampler.SetInterpolator(sitk.sitkNearestNeighbor)
        resampler.SetTransform(transform)
        resampler.SetDefaultPixelValue(0)
        return resampler.Execute(labels)
    if method != "onehot":
        raise ValueError(f"method must be 'nearest' or 'onehot', got {method!r}")
    array = sitk.GetArrayFromImage(labels)
    values = np.unique(array)
    grid = sampling_grid(displacement, ImageGeometry.from_image(labels), device=device)
    source = torch.from_numpy(array.astype(np.int64)).to(device)[None, None]
    best = torch.zeros((1, 1, *grid.shape[1:4]), device=device)
    result = torch.zeros((1, 1, *grid.shape[1:4]), dtype=torch.int64, device=device)
    for start in range(0, len(values), chunk):
        group = torch.as_tensor(values[start : start + chunk].astype(np.int64), device=device)
        indicators = (source == group.view(1, -1, 1, 1, 1)).float()
        weights = F.grid_sample(indicators, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        top, where = weights.max(dim=1, keepdim=True)
        better = top > best
        best = torch.where(better, top, best)
        result = torch.where(better, group[where], result)
    out = sitk.GetImageFromArray(result[0, 0].cpu().numpy().astype(array.dtype))
    return ImageGeometry.from_image(displacement).apply_to(out)

"""Dense displacement fields in voxel units: warping, composition, scaling and squaring (torch).

The operations the registration networks (:mod:`SlicerMedFuse.nets.registration`) and the
registration pipeline (:mod:`SlicerMedFuse.registration`) share; the conversions to physical
fields and ITK transforms live in :mod:`SlicerMedFuse.registration.transforms`.

Conventions (all functions):

* Volumes are torch ``(B, C, D, H, W)`` tensors: ``D, H, W`` are SimpleITK's index axes
  ``k, j, i`` (``sitk.GetArrayFromImage`` order).
* A displacement ``u`` is ``(B, 3, D, H, W)`` in **voxel units of its grid**; channel c is the
  displacement along index axis c of ``(i, j, k)``, which is grid_sample's ``(x, y, z)`` order.
  It maps a point ``x`` of the fixed (output) grid to ``x + u(x)`` in the moving image, ITK's
  resampling convention.
* Sampling uses ``align_corners=False``: voxel centres sit at ``(2 i + 1) / n - 1`` in normalised
  coordinates, so fields and images at different resolutions of one extent stay consistent.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "compose",
    "identity_grid",
    "integrate_velocity",
    "resize_displacement",
    "to_normalized",
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

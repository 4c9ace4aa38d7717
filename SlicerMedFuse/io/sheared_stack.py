"""Resample a sheared or unevenly spaced stack of parallel slices onto a regular orthogonal grid.

A CT acquired with gantry tilt is a stack of parallel slices whose positions drift sideways along
the table (the stack is sheared); a variable-thickness protocol has uneven gaps. Both the DICOM
reader (:mod:`SlicerMedFuse.io.dicom`) and the hemorrhage acquisition simulator
(:mod:`SlicerMedFuse.hemorrhage.acquisition`) put such a stack onto a regular grid with this one
function, so simulated tilted scans reach the model exactly as real tilted DICOM series do.

Arrays follow SimpleITK: a slice is ``(rows, columns)`` = (j, i); positions are LPS millimetres.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk

__all__ = ["SlicePlacement", "regularize_stack", "shift_axis"]


@dataclasses.dataclass(frozen=True)
class SlicePlacement:
    """Where the parallel slices of a stack lie, sorted along their normal.

    Attributes:
        origin: (3,) LPS position (mm) of pixel (0, 0) of the first slice.
        row: (3,) unit direction of increasing column index i.
        col: (3,) unit direction of increasing row index j.
        normal: (3,) unit slice normal (row x col).
        pixel_spacing: In-plane spacing (mm) along (i, j).
        size: In-plane size (columns, rows).
        depths: (n,) position of each slice along the normal (mm), increasing.
        lateral: (n, 2) in-plane offset (mm) of each slice's pixel (0, 0) from the first's, along (row, col).
    """

    origin: np.ndarray
    row: np.ndarray
    col: np.ndarray
    normal: np.ndarray
    pixel_spacing: tuple[float, float]
    size: tuple[int, int]
    depths: np.ndarray
    lateral: np.ndarray


def shift_axis(array: np.ndarray, start: float, count: int, axis: int) -> np.ndarray:
    """Linearly sample ``array`` along ``axis`` at continuous indices ``start + arange(count)``; NaN outside."""
    length = array.shape[axis]
    index = start + np.arange(count, dtype=np.float64)
    index = np.where(np.abs(index - np.round(index)) < 1e-6, np.round(index), index)  # snap float noise
    inside = (index >= 0) & (index <= length - 1)
    low = np.clip(np.floor(index).astype(np.int64), 0, max(length - 2, 0))
    high = np.minimum(low + 1, length - 1)
    weight = np.clip(index - low, 0.0, 1.0).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = count
    weight = weight.reshape(shape)
    sampled = np.take(array, low, axis=axis) * (1 - weight) + np.take(array, high, axis=axis) * weight
    outside: list[slice | np.ndarray] = [slice(None)] * array.ndim
    outside[axis] = ~inside
    sampled[tuple(outside)] = np.nan
    return sampled


def regularize_stack(
    placement: SlicePlacement,
    read_slice: Callable[[int], np.ndarray],
    spacing_mm: float,
    tolerance_mm: float,
    fill: float | None = None,
) -> sitk.Image:
    """Resample the slices onto a regular orthogonal grid in the slices' own frame, shear removed.

    Target frame: axes (row, col, normal), origin at the first slice's position shifted so the grid
    covers every (sheared) slice; each target slice is interpolated linearly between the two
    acquired slices around it, each placed at its true in-plane offset (linear in-plane).

    Args:
        placement: The slices' geometry.
        read_slice: Slice k as a float32 ``(rows, columns)`` array.
        spacing_mm: Target slice spacing (mm), e.g. the stack's own smallest regular gap.
        tolerance_mm: How far (mm) the last target slice may pass the last acquired one.
        fill: Value of voxels no slice covers (None: the smallest value of the stack).

    Returns:
        A float32 image with spacing ``(*pixel_spacing, spacing_mm)``.
    """
    (nx, ny), (sx, sy) = placement.size, placement.pixel_spacing
    depths, lateral = placement.depths, placement.lateral
    u0, v0 = lateral.min(axis=0)
    u1, v1 = lateral.max(axis=0)
    nu = int(round((u1 - u0) / sx)) + nx
    nv = int(round((v1 - v0) / sy)) + ny
    reach = depths[-1] - depths[0] + tolerance_mm
    nw = int(np.floor(reach / spacing_mm)) + 1
    targets = depths[0] + spacing_mm * np.arange(nw)

    cache: dict[int, np.ndarray] = {}

    def in_plane(k: int) -> np.ndarray:
        """Slice k shifted onto the target in-plane grid: (nv, nu)."""
        if k not in cache:
            pixels = np.asarray(read_slice(k), dtype=np.float32).reshape(ny, nx)
            a, b = lateral[k]
            pixels = shift_axis(pixels, (u0 - a) / sx, nu, axis=1)
            cache[k] = shift_axis(pixels, (v0 - b) / sy, nv, axis=0)
        return cache[k]

    volume = np.empty((nw, nv, nu), dtype=np.float32)
    if len(depths) == 1:
        volume[0] = in_plane(0)
    for j, w in enumerate(targets if len(depths) > 1 else ()):
        k = int(np.clip(np.searchsorted(depths, w, side="right") - 1, 0, len(depths) - 2))
        t = float(np.clip((w - depths[k]) / (depths[k + 1] - depths[k]), 0.0, 1.0))
        for stale in [key for key in cache if key < k]:
            del cache[stale]
        volume[j] = in_plane(k) if t == 0.0 else (1 - t) * in_plane(k) + t * in_plane(k + 1)
    outside = np.isnan(volume)
    if outside.any():
        volume[outside] = np.nanmin(volume) if fill is None else fill

    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((sx, sy, spacing_mm))
    image.SetOrigin(tuple(float(x) for x in placement.origin + u0 * placement.row + v0 * placement.col))
    image.SetDirection(
        tuple(float(x) for x in np.column_stack([placement.row, placement.col, placement.normal]).ravel())
    )
    return image

"""Small physical-space helpers shared by the hemorrhage modules (masks, distances, smooth fields).

Arrays follow SimpleITK's numpy view: ``(z, y, x)`` index order, with voxel size
``spacing_zyx`` in mm. Every helper is vectorised (SimpleITK filters or numpy), none loops over
voxels. Private to :mod:`SlicerMedFuse.hemorrhage`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

__all__ = [
    "as_image",
    "binary_closing_mm",
    "distance_inside_mm",
    "distance_outside_mm",
    "fill_holes_2d",
    "keep_components",
    "physical_axes",
    "radius_voxels",
    "smooth_mm",
    "smooth_noise",
]


def as_image(array: np.ndarray, spacing_zyx: Sequence[float]) -> sitk.Image:
    """Wrap a ``(z, y, x)`` array as an image with spacing (mm) and identity direction."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing_zyx)))
    return image


def radius_voxels(radius_mm: float, spacing_zyx: Sequence[float]) -> list[int]:
    """Per-axis structuring-element radius in voxels, SimpleITK ``(x, y, z)`` order, at least 1."""
    return [max(1, int(round(radius_mm / s))) for s in reversed(spacing_zyx)]


def distance_inside_mm(mask: np.ndarray, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Distance (mm) from each voxel inside ``mask`` to the nearest voxel outside; 0 outside.

    Shape ``(z, y, x)`` float32. A boundary voxel of the mask is one voxel spacing from outside.
    """
    if not mask.any():
        return np.zeros(mask.shape, np.float32)
    outside = as_image((~mask).astype(np.uint8), spacing_zyx)
    dist = sitk.SignedMaurerDistanceMap(outside, insideIsPositive=True, squaredDistance=False, useImageSpacing=True)
    return np.maximum(-sitk.GetArrayFromImage(dist), 0).astype(np.float32)


def distance_outside_mm(mask: np.ndarray, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Distance (mm) from each voxel outside ``mask`` to the nearest mask voxel; 0 inside."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return distance_inside_mm(~mask, spacing_zyx)


def binary_closing_mm(mask: np.ndarray, radius_mm: float, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Morphological closing with a Euclidean ball of ``radius_mm`` (mm), via two distance maps.

    Exact for anisotropic voxels and linear in the image size, unlike a voxel structuring element.
    """
    dilated = distance_outside_mm(mask, spacing_zyx) <= radius_mm
    return mask | (distance_inside_mm(dilated, spacing_zyx) > radius_mm)


def fill_holes_2d(mask: np.ndarray, axis: int = 0) -> np.ndarray:
    """Fill holes slice by slice along ``axis`` with one 3-D fill-hole call.

    Slices are interleaved with (and capped by) all-foreground walls so that background cannot connect across
    slices; a 3-D BinaryFillhole then equals a 2-D fill on every slice.
    """
    moved = np.moveaxis(mask, axis, 0)
    n = moved.shape[0]
    stacked = np.ones((2 * n + 1, *moved.shape[1:]), np.uint8)
    stacked[1::2] = moved
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(sitk.GetImageFromArray(stacked), fullyConnected=False))
    return np.moveaxis(filled[1::2].astype(bool), 0, axis)


def keep_components(
    mask: np.ndarray, spacing_zyx: Sequence[float], min_volume_ml: float = 0.0, largest: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components (26-connected) of ``mask``.

    Returns:
        ``(labels, sizes_ml, kept)``: the label array ``(z, y, x)`` int32 (0 background), the
        volume of each label 1..N in mL, and the mask of the components kept (at least
        ``min_volume_ml``; only the ``largest`` biggest ones when given).
    """
    cc = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True)
    labels = sitk.GetArrayFromImage(cc).astype(np.int32)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    sizes = np.bincount(labels.ravel())[1:] * voxel_ml
    keep = sizes >= min_volume_ml
    if largest is not None and keep.any():
        order = np.argsort(sizes)[::-1]
        keep[order[largest:]] = False
    lookup = np.concatenate([[False], keep])
    return labels, sizes, lookup[labels]


_RECURSIVE_GAUSSIAN_MIN_SIZE = 4
"""ITK's recursive Gaussian needs at least this many voxels along every axis."""


def smooth_mm(array: np.ndarray, sigma_mm: float, spacing_zyx: Sequence[float]) -> np.ndarray:
    """Gaussian smoothing with ``sigma_mm`` (mm, isotropic in physical space); float32 output.

    Arrays thinner than 4 voxels along an axis (a small bleed box on a coarse grid, e.g. 3.8 mm
    voxels) are edge-padded to 4 for ITK's recursive filter and cropped back.
    """
    short = [max(_RECURSIVE_GAUSSIAN_MIN_SIZE - n, 0) for n in array.shape]
    padded = np.pad(array, [(0, n) for n in short], mode="edge") if any(short) else array
    image = as_image(padded.astype(np.float32), spacing_zyx)
    smoothed = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(image, float(sigma_mm))).astype(np.float32)
    return smoothed[tuple(slice(0, n) for n in array.shape)]


def smooth_noise(
    shape: Sequence[int], sigma_mm: float, spacing_zyx: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """A smooth random field with zero mean and unit standard deviation, correlation length ~``sigma_mm``."""
    field = smooth_mm(rng.standard_normal(tuple(shape), dtype=np.float32), sigma_mm, spacing_zyx)
    std = float(field.std())
    return (field - float(field.mean())) / (std if std > 0 else 1.0)


def physical_axes(image: sitk.Image, index_start: Sequence[int], shape_zyx: Sequence[int]) -> np.ndarray:
    """LPS coordinates (mm) of a block of voxels, as broadcastable per-index-axis contributions.

    Returns an array ``(3, z, y, x)`` float32 with the LPS x, y, z of every voxel of the block that
    starts at ``index_start`` (SimpleITK ``(i, j, k)`` order) with shape ``shape_zyx``.
    """
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), float)
    origin = np.asarray(image.GetOrigin(), float)
    step = direction * spacing  # column c: mm moved per index step along axis c
    k = np.arange(shape_zyx[0]) + index_start[2]
    j = np.arange(shape_zyx[1]) + index_start[1]
    i = np.arange(shape_zyx[2]) + index_start[0]
    coords = (
        origin[:, None, None, None]
        + step[:, 2, None, None, None] * k[None, :, None, None]
        + step[:, 1, None, None, None] * j[None, None, :, None]
        + step[:, 0, None, None, None] * i[None, None, None, :]
    )
    return coords.astype(np.float32)

"""Interpolation baselines for through-plane upsampling: linear, cubic B-spline, windowed sinc."""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk
import torch

from SlicerMedFuse.geometry import resample_to_reference
from SlicerMedFuse.superres.methods import INTERPOLATORS
from SlicerMedFuse.superres.slice_geometry import SliceGeometry

__all__ = ["fine_slice_reference", "interpolate_slices", "slice_positions"]


def fine_slice_reference(image: sitk.Image, geometry: SliceGeometry, new_spacing: float) -> sitk.Image:
    """An empty image on the output grid: same in-plane grid, slices every ``new_spacing`` mm.

    The first and last slice centres stay where they were (the grid spans the same physical extent
    between slice centres), so an integer factor k gives exactly (n - 1) * k + 1 slices and every
    input slice is also an output slice.
    """
    size = list(image.GetSize())
    spacing = list(image.GetSpacing())
    span = (size[geometry.axis] - 1) * spacing[geometry.axis]
    size[geometry.axis] = int(round(span / new_spacing)) + 1
    spacing[geometry.axis] = span / (size[geometry.axis] - 1) if size[geometry.axis] > 1 else new_spacing
    reference = sitk.Image(size, sitk.sitkUInt8)
    reference.SetSpacing(spacing)
    reference.SetOrigin(image.GetOrigin())
    reference.SetDirection(image.GetDirection())
    return reference


def slice_positions(image: sitk.Image, reference: sitk.Image, axis: int) -> torch.Tensor:
    """Positions (mm, along the slice axis, from the first input slice) of the reference's slices.

    Raises:
        ValueError: the reference does not share the input's in-plane grid and direction.
    """
    if not np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-6):
        raise ValueError("the reference grid must have the input's direction")
    for index in range(3):
        if index != axis and (
            image.GetSize()[index] != reference.GetSize()[index]
            or not math.isclose(image.GetSpacing()[index], reference.GetSpacing()[index], rel_tol=1e-6)
        ):
            raise ValueError("the reference grid must keep the input's in-plane grid")
    start = image.TransformPhysicalPointToContinuousIndex(reference.GetOrigin())
    if any(abs(start[index]) > 1e-3 for index in range(3) if index != axis):
        raise ValueError("the reference grid must keep the input's in-plane grid")
    spacing = image.GetSpacing()[axis]
    steps = torch.arange(reference.GetSize()[axis], dtype=torch.float64) * reference.GetSpacing()[axis]
    return start[axis] * spacing + steps


def _sinc_along_slices(image: sitk.Image, reference: sitk.Image, axis: int) -> sitk.Image:
    """Lanczos windowed sinc along the slice axis only, as a 2D (slice x in-plane pixel) resampling.

    When the in-plane grid is kept, every in-plane sample falls on an input pixel where ITK's
    windowed-sinc weights are a delta, so the 3D filter's 7^3-point kernel reduces to its 7 points
    along the slice axis. Resampling the (slices, pixels) matrix as a 2D image gives the same values
    as the 3D filter with 7x fewer kernel evaluations (minutes -> seconds on a 256^2 x 100 CT).
    """
    positions = slice_positions(image, reference, axis)
    array = sitk.GetArrayFromImage(image)
    slice_dim = 2 - axis
    moved = np.moveaxis(array, slice_dim, 0)
    matrix = sitk.GetImageFromArray(np.ascontiguousarray(moved.reshape(moved.shape[0], -1)))
    matrix.SetSpacing((1.0, image.GetSpacing()[axis]))
    grid = sitk.Image((matrix.GetSize()[0], positions.numel()), sitk.sitkUInt8)
    grid.SetSpacing((1.0, reference.GetSpacing()[axis]))
    grid.SetOrigin((0.0, float(positions[0])))
    resampled = sitk.GetArrayFromImage(resample_to_reference(matrix, grid, interpolation="sinc"))
    volume = np.moveaxis(resampled.reshape(positions.numel(), *moved.shape[1:]), 0, slice_dim)
    output = sitk.GetImageFromArray(np.ascontiguousarray(volume))
    output.CopyInformation(reference)
    return output


def interpolate_slices(image: sitk.Image, reference: sitk.Image, method: str) -> sitk.Image:
    """Resample ``image`` onto ``reference`` with one of :data:`INTERPOLATORS`, clipped to the input range.

    Clipping removes the over- and undershoot of B-spline and sinc kernels at sharp edges (bone/air),
    which would otherwise create intensities the scanner never measured. The result keeps the input's
    pixel type (rounded for integer types) so a CT stays in HU.
    """
    if method not in INTERPOLATORS:
        raise ValueError(f"method must be one of {INTERPOLATORS}, got {method!r}")
    axis = _slice_axis(image, reference)
    if method == "sinc" and axis is not None:
        resampled = _sinc_along_slices(image, reference, axis)
    else:
        resampled = resample_to_reference(image, reference, interpolation=method)
    array = sitk.GetArrayViewFromImage(image)
    low, high = float(array.min()), float(array.max())
    clipped = sitk.Clamp(sitk.Cast(resampled, sitk.sitkFloat32), sitk.sitkFloat32, low, high)
    if np.issubdtype(array.dtype, np.integer):
        clipped = sitk.Cast(sitk.Round(clipped), image.GetPixelID())
    clipped.CopyInformation(reference)
    return clipped


def _slice_axis(image: sitk.Image, reference: sitk.Image) -> int | None:
    """The one axis along which ``reference`` differs from ``image``'s grid, or None (a general grid)."""
    if image.GetDimension() != 3 or reference.GetDimension() != 3:
        return None
    differing = [
        index
        for index in range(3)
        if image.GetSize()[index] != reference.GetSize()[index]
        or not math.isclose(image.GetSpacing()[index], reference.GetSpacing()[index], rel_tol=1e-6)
    ]
    candidates = differing or [2]
    if len(candidates) != 1:
        return None
    try:
        slice_positions(image, reference, candidates[0])
    except ValueError:
        return None
    return candidates[0]

"""Interpolation baselines for through-plane upsampling: linear, cubic B-spline, windowed sinc."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.geometry import resample_to_reference
from SlicerMedFuse.superres.slice_geometry import SliceGeometry

__all__ = ["INTERPOLATORS", "fine_slice_reference", "interpolate_slices"]

INTERPOLATORS = ("linear", "bspline", "sinc")


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


def interpolate_slices(image: sitk.Image, reference: sitk.Image, method: str) -> sitk.Image:
    """Resample ``image`` onto ``reference`` with one of :data:`INTERPOLATORS`, clipped to the input range.

    Clipping removes the over- and undershoot of B-spline and sinc kernels at sharp edges (bone/air),
    which would otherwise create intensities the scanner never measured. The result keeps the input's
    pixel type (rounded for integer types) so a CT stays in HU.
    """
    if method not in INTERPOLATORS:
        raise ValueError(f"method must be one of {INTERPOLATORS}, got {method!r}")
    resampled = resample_to_reference(image, reference, interpolation=method)
    array = sitk.GetArrayViewFromImage(image)
    low, high = float(array.min()), float(array.max())
    clipped = sitk.Clamp(sitk.Cast(resampled, sitk.sitkFloat32), sitk.sitkFloat32, low, high)
    if np.issubdtype(array.dtype, np.integer):
        clipped = sitk.Cast(sitk.Round(clipped), image.GetPixelID())
    clipped.CopyInformation(reference)
    return clipped

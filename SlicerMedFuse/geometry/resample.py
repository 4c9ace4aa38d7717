"""Resampling in physical space with SimpleITK: onto a reference grid, or to a new voxel size.

Interpolators (``interpolation=``):

* ``"linear"``: trilinear, the default for intensity images;
* ``"nearest"``: nearest neighbour, keeps the pixel type;
* ``"label"``: label-aware Gaussian voting (``sitkLabelGaussian``), keeps the pixel type and
  only produces label values that exist in the input (smoother than nearest for masks);
* ``"bspline"``: cubic B-spline;
* ``"sinc"``: Lanczos windowed sinc.

Non-label interpolators return float32 (vector float32 for vector images).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.geometry.grid import ImageGeometry

__all__ = ["INTERPOLATORS", "resample_to_reference", "resample_to_spacing"]

#: Interpolation name -> SimpleITK interpolator.
INTERPOLATORS: dict[str, int] = {
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
    "label": sitk.sitkLabelGaussian,
    "bspline": sitk.sitkBSpline,
    "sinc": sitk.sitkLanczosWindowedSinc,
}
_KEEPS_PIXEL_TYPE = ("nearest", "label")


def _interpolator(interpolation: str) -> int:
    if interpolation not in INTERPOLATORS:
        raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATORS)}; got {interpolation!r}")
    return INTERPOLATORS[interpolation]


def _output_pixel_type(image: sitk.Image, interpolation: str) -> int:
    if interpolation in _KEEPS_PIXEL_TYPE:
        return image.GetPixelID()
    return sitk.sitkVectorFloat32 if image.GetNumberOfComponentsPerPixel() > 1 else sitk.sitkFloat32


def resample_to_reference(
    image: sitk.Image,
    reference: sitk.Image | ImageGeometry,
    *,
    interpolation: str = "linear",
    transform: sitk.Transform | None = None,
    default_value: float | None = None,
) -> sitk.Image:
    """Resample ``image`` onto the voxel grid of ``reference`` (matching physical points, not indices).

    Args:
        image: the image to resample (scalar or vector; vector images not with ``"label"``).
        reference: the target grid: an image (only its geometry is used) or an :class:`ImageGeometry`.
        interpolation: ``"linear"``, ``"nearest"``, ``"label"``, ``"bspline"`` or ``"sinc"``.
        transform: optional transform mapping *reference* (output) LPS points to *image* (input)
            LPS points, ITK's resampling convention (e.g. a registration result); identity if None.
        default_value: value for output voxels that fall outside ``image``; None means 0 for
            ``"label"`` and the image's minimum otherwise.

    Returns:
        An image on ``reference``'s grid (same size, spacing, origin, direction); pixel type of
        ``image`` for ``"nearest"``/``"label"``, float32 otherwise.

    Raises:
        ValueError: an unknown ``interpolation``, or ``"label"`` on a vector image.
    """
    interpolator = _interpolator(interpolation)
    if interpolation == "label" and image.GetNumberOfComponentsPerPixel() > 1:
        raise ValueError("interpolation 'label' needs a scalar label image, got a vector image")
    grid = reference if isinstance(reference, ImageGeometry) else ImageGeometry.from_image(reference)
    if grid.dimension != image.GetDimension():
        raise ValueError(f"cannot resample a {image.GetDimension()}D image onto a {grid.dimension}D grid")
    if default_value is None:
        default_value = 0.0 if interpolation == "label" else float(np.min(sitk.GetArrayViewFromImage(image)))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize(grid.size)
    resampler.SetOutputSpacing(grid.spacing)
    resampler.SetOutputOrigin(grid.origin)
    resampler.SetOutputDirection(grid.direction)
    resampler.SetInterpolator(interpolator)
    resampler.SetDefaultPixelValue(float(default_value))
    resampler.SetOutputPixelType(_output_pixel_type(image, interpolation))
    resampler.SetTransform(
        transform if transform is not None else sitk.Transform(image.GetDimension(), sitk.sitkIdentity)
    )
    return resampler.Execute(image)


def resample_to_spacing(
    image: sitk.Image, spacing: float | Sequence[float], *, interpolation: str = "linear"
) -> sitk.Image:
    """Resample ``image`` to a new voxel size, keeping its physical extent, origin corner and direction.

    The new size along each axis is ``round(extent / spacing)`` (at least 1) with
    ``extent = size * old_spacing``; the grid starts at the same outer voxel edge as ``image``.

    Args:
        image: the image to resample.
        spacing: new voxel size in mm, one value for all axes or one per axis (i, j, k).
        interpolation: see :func:`resample_to_reference`.

    Returns:
        The resampled image (pixel type as in :func:`resample_to_reference`).

    Raises:
        ValueError: a non-positive spacing, a wrong number of values, or an unknown ``interpolation``.
    """
    _interpolator(interpolation)
    dim = image.GetDimension()
    new_spacing = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if new_spacing.size == 1:
        new_spacing = np.full(dim, new_spacing[0])
    if new_spacing.shape != (dim,) or not np.all(np.isfinite(new_spacing)) or np.any(new_spacing <= 0):
        raise ValueError(f"spacing must be a positive number or {dim} positive numbers (mm), got {spacing!r}")
    geometry = ImageGeometry.from_image(image)
    old_spacing = np.asarray(geometry.spacing)
    extent = np.asarray(geometry.size) * old_spacing
    new_size = np.maximum(np.round(extent / new_spacing), 1).astype(int)
    # Keep the first outer voxel edge: the new first centre lies half a new voxel inside it.
    shift = geometry.direction_matrix @ (0.5 * (new_spacing - old_spacing))
    target = ImageGeometry(
        size=tuple(int(s) for s in new_size),
        spacing=tuple(new_spacing),
        origin=tuple(np.asarray(geometry.origin) + shift),
        direction=geometry.direction,
    )
    return resample_to_reference(image, target, interpolation=interpolation)

"""Input sanity checks run before any task: the image is what a volumetric pipeline can use.

Each failed check raises :class:`~SlicerMedFuse.errors.InputError` with one sentence that names
the input's role and the fix. The checks are vectorised (a few passes over the voxel buffer,
without copying it where SimpleITK allows a view).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["check_image"]


def _size_text(size: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in size)


def check_image(image: sitk.Image, role: str, *, dimension: int = 3, allow_vector: bool = False) -> None:
    """Raise :class:`InputError` unless ``image`` is a usable ``dimension``-D image.

    Checked, in this order: the dimension (a 4D image, a 2D image or a 3D image that is a single
    slice where 3D is needed), an empty size, vector pixels (unless ``allow_vector``), NaN or
    infinite voxels, and a constant image (one value everywhere: an empty mask or placeholder).

    Args:
        image: the image to check.
        role: the input's role, named in the message (e.g. ``"ct"``, ``"t1"``).
        dimension: the number of spatial dimensions required, 2 or 3.
        allow_vector: accept multi-component pixels (RGB, displacement fields).

    Raises:
        InputError: the first failed check, naming ``role`` and the fix.
        TypeError: ``image`` is not a ``SimpleITK.Image``.
        ValueError: ``dimension`` is not 2 or 3.
    """
    if not isinstance(image, sitk.Image):
        raise TypeError(f"image must be a SimpleITK.Image, got {type(image).__name__}")
    if dimension not in (2, 3):
        raise ValueError(f"dimension must be 2 or 3, got {dimension}")
    size = tuple(int(s) for s in image.GetSize())
    name = f"Input '{role}'"
    if image.GetDimension() > dimension:
        raise InputError(
            f"{name} is {image.GetDimension()}D (size {_size_text(size)}), e.g. a time series or several volumes; "
            f"give a single {dimension}D volume, such as one phase exported on its own."
        )
    if image.GetDimension() < dimension:
        raise InputError(f"{name} is {image.GetDimension()}D (size {_size_text(size)}); give a {dimension}D volume.")
    if 0 in size:
        raise InputError(f"{name} is empty (size {_size_text(size)}); check that the file holds the scan.")
    if dimension == 3 and 1 in size:
        raise InputError(
            f"{name} is a single slice (size {_size_text(size)}), not a volume; give the whole series "
            "(for DICOM, the folder rather than one file)."
        )
    components = image.GetNumberOfComponentsPerPixel()
    if components > 1 and not allow_vector:
        raise InputError(
            f"{name} has {components} values per voxel (e.g. RGB or a vector field); give a scalar (grayscale) image."
        )

    array = sitk.GetArrayViewFromImage(image)
    if np.iscomplexobj(array):
        raise InputError(f"{name} has complex-valued voxels; give a real-valued (magnitude) image.")
    low, high = array.min(), array.max()
    if np.issubdtype(array.dtype, np.floating) and not (np.isfinite(low) and np.isfinite(high)):
        nans = int(np.count_nonzero(np.isnan(array)))
        infinite = int(np.count_nonzero(np.isinf(array)))
        raise InputError(
            f"{name} has {nans} NaN and {infinite} infinite voxels; replace them (e.g. with 0) before running."
        )
    if low == high:
        raise InputError(
            f"{name} has the same value ({low.item():g}) in every voxel; check that the file holds the scan and "
            "not an empty mask or placeholder."
        )

"""Voxel-axis orientation: which anatomical direction the index axes (i, j, k) point to.

A code such as ``"RAS"`` means index i increases toward the patient's Right, j toward Anterior
and k toward Superior (ITK's ``DICOMOrientImageFilter`` convention; ITK's default identity
direction is ``"LPS"``). Reorienting only permutes and flips the voxel array and updates the
direction/origin: no interpolation, every voxel keeps its value and its physical position. The
world coordinates stay LPS throughout (world LPS <-> RAS conversion lives in
:mod:`SlicerMedFuse.geometry.coordinates`).
"""

from __future__ import annotations

import SimpleITK as sitk

from SlicerMedFuse.geometry.grid import ImageGeometry

__all__ = ["from_canonical", "orientation_code", "to_canonical"]

_AXIS_PAIRS = ("LR", "PA", "IS")


def orientation_code(image: sitk.Image) -> str:
    """The 3-letter orientation of a 3D image's index axes, e.g. ``"LPS"`` (identity direction) or ``"RAS"``.

    Oblique directions give the closest anatomical axes.
    """
    if image.GetDimension() != 3:
        raise ValueError(f"orientation_code needs a 3D image, got {image.GetDimension()}D")
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def _check_code(code: str) -> str:
    upper = code.upper() if isinstance(code, str) else ""
    pairs = sorted(next((i for i, pair in enumerate(_AXIS_PAIRS) if letter in pair), -1) for letter in upper)
    if len(upper) != 3 or pairs != [0, 1, 2]:
        raise ValueError(
            f"orientation code must be 3 letters, one of L/R, one of A/P and one of S/I (e.g. 'RAS'), got {code!r}"
        )
    return upper


def to_canonical(image: sitk.Image, code: str = "RAS") -> sitk.Image:
    """Permute/flip the voxel array so the index axes point along ``code``; no interpolation.

    Args:
        image: a 3D image (scalar or vector).
        code: target orientation, e.g. ``"RAS"`` (i -> Right, j -> Anterior, k -> Superior) or ``"LPS"``.

    Returns:
        The same voxels on a reoriented grid covering the same physical region.

    Raises:
        ValueError: an invalid ``code`` or a non-3D image.
    """
    code = _check_code(code)
    if image.GetDimension() != 3:
        raise ValueError(f"to_canonical needs a 3D image, got {image.GetDimension()}D")
    return sitk.DICOMOrient(image, code)


def from_canonical(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Undo :func:`to_canonical`: put ``image``'s voxels back on ``reference``'s exact grid.

    Typical use: a model ran on ``to_canonical(reference)``; its output goes back to the
    reference's orientation. The result gets the reference's spacing, origin and direction
    exactly (no floating-point drift) after checking that the grids agree.

    Args:
        image: a 3D image on a reoriented version of ``reference``'s grid.
        reference: the image whose grid the result must have.

    Returns:
        ``image`` permuted/flipped onto ``reference``'s grid (voxel values unchanged).

    Raises:
        ValueError: ``image`` does not cover ``reference``'s grid after reorientation.
    """
    result = sitk.DICOMOrient(image, orientation_code(reference))
    target = ImageGeometry.from_image(reference)
    found = ImageGeometry.from_image(result).differences(target)
    if found:
        raise ValueError(f"the image is not a reoriented copy of the reference grid ({'; '.join(found)})")
    return target.apply_to(result)

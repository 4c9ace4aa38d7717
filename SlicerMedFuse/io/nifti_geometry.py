"""Where a NIfTI header puts its voxels, and whether ITK reads them there.

A NIfTI header can give the voxel-to-world mapping twice: the *qform* (a quaternion rotation, voxel
sizes and an offset, so always a rotation times a diagonal scale, never sheared) and the *sform*
(a free 3x4 matrix ``srow_x/y/z``, which can be sheared). ITK's image can only hold a rotation
times a diagonal scale, and ITK 5.4's reader chooses between the two without a word:

* a sheared sform with a qform beside it: ITK silently uses the qform, so the voxels land where
  the qform says, up to centimetres from where the sform (what FSL, nibabel and the file's author
  mean) puts them;
* a sheared sform alone: ITK refuses the file with a C++ error about direction cosines;
* an sform and a qform that disagree: ITK takes the sform when ``sform_code`` is 1 (scanner) and
  the qform otherwise, so the same file lands in two places depending on a code.

The backend refuses such files (exit 3) instead of resampling them: which mapping is true cannot
be known when the two disagree, and 3D Slicer reads NIfTI through the same ITK reader, so a
result resampled onto the sform's position would not overlay the volume Slicer shows for the
same file. A radiologist expects the anatomy exactly where the file says, or a clear refusal.

Positions are compared at the 8 corner voxel centres of the volume, in mm.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Protocol

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["TOLERANCE_MM", "check_itk_placement", "declared_affine"]

#: Largest distance (mm) between two placements of a corner voxel that still counts as the same place.
TOLERANCE_MM = 0.01
#: Share of the field-of-view diagonal by which the qform may miss the sform. ITK's own NIfTI
#: writer stores an oblique image's qform with round-off that puts its corner voxels up to 0.05 % of
#: the field-of-view diagonal from the sform (measured on 150 random tilts 0-25 degrees, pixels
#: 0.4-1 mm, slices 0.5-9 mm: at most 0.27 mm for a 540 mm diagonal), so every tilted scan it
#: writes would be refused at 0.01 mm; 0.1 % is twice that and far below a real disagreement.
QFORM_SHARE_OF_FIELD = 1e-3
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


class NiftiXforms(Protocol):
    """The header fields this module reads (see :class:`SlicerMedFuse.io.file_integrity` 's parser)."""

    shape: tuple[int, ...]
    pixdim: tuple[float, ...]
    qform_code: int
    sform_code: int
    quatern: tuple[float, float, float]
    qoffset: tuple[float, float, float]
    srow: tuple[float, ...]


def _qform_affine(header: NiftiXforms) -> np.ndarray:
    """Voxel index -> RAS mm from the quaternion (NIfTI-1 standard, ``nifti_quatern_to_mat44``)."""
    b, c, d = header.quatern
    a = math.sqrt(max(1.0 - (b * b + c * c + d * d), 0.0))
    rotation = np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ]
    )
    rotation /= np.linalg.norm(rotation, axis=0)  # b, c, d are float32: keep the columns unit length
    qfac = -1.0 if header.pixdim[0] < 0 else 1.0
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([header.pixdim[1], header.pixdim[2], qfac * header.pixdim[3]])
    affine[:3, 3] = header.qoffset
    return affine


def _sform_affine(header: NiftiXforms) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :] = np.asarray(header.srow, dtype=float).reshape(3, 4)
    return affine


def _corners(shape: tuple[int, ...]) -> np.ndarray:
    """The 8 corner voxel indices of the first three axes, as homogeneous columns (4 x 8)."""
    extent = [max(n - 1, 0) for n in (*shape[:3], 1, 1)[:3]]
    points = np.array(list(itertools.product(*[(0, e) for e in extent])), dtype=float).T
    return np.vstack([points, np.ones(points.shape[1])])


def _largest_distance(first: np.ndarray, second: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance (mm) between where two voxel-to-world affines put a corner voxel."""
    corners = _corners(shape)
    return float(np.max(np.linalg.norm((first @ corners - second @ corners)[:3], axis=0)))


def _nearest_unsheared(affine: np.ndarray) -> np.ndarray:
    """The rotation times diagonal scale closest to ``affine`` (same origin, same voxel sizes)."""
    matrix = affine[:3, :3]
    sizes = np.linalg.norm(matrix, axis=0)
    u, _, vt = np.linalg.svd(matrix / sizes)
    nearest = affine.copy()
    nearest[:3, :3] = (u @ vt) @ np.diag(sizes)
    return nearest


def _worst_axis_angle(affine: np.ndarray) -> float:
    """The angle (degrees) between two voxel axes that is farthest from 90 degrees."""
    axes = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    cosines = [abs(float(axes[:, i] @ axes[:, j])) for i, j in ((0, 1), (0, 2), (1, 2))]
    return math.degrees(math.acos(min(max(cosines), 1.0)))


def declared_affine(header: NiftiXforms, path: Path) -> np.ndarray | None:
    """The voxel-index -> LPS mm affine a NIfTI header declares, refusing a header ITK would misplace.

    The sform is what the file means when ``sform_code`` > 0 (as FSL and nibabel read it), the
    qform when only ``qform_code`` > 0.

    Args:
        header: the parsed NIfTI-1 or NIfTI-2 header.
        path: the file, for the message.

    Returns:
        A 4 x 4 affine (index (i, j, k, 1) -> LPS mm), or None when the header declares neither
        (both codes 0: only voxel sizes, no position).

    Raises:
        InputError: the sform is sheared, or the sform and the qform put a corner voxel more than
            :data:`TOLERANCE_MM` (or 0.1 % of the field-of-view diagonal, :data:`QFORM_SHARE_OF_FIELD`) apart.
    """
    if header.sform_code <= 0:
        return _RAS_TO_LPS @ _qform_affine(header) if header.qform_code > 0 else None
    sform = _sform_affine(header)
    if not np.all(np.linalg.norm(sform[:3, :3], axis=0) > 0):
        raise InputError(
            f"'{path}' has an sform with a zero-length voxel axis (srow_x/y/z), which places no voxel anywhere; "
            "fix the header with the program that made it and try again."
        )
    shear_mm = _largest_distance(sform, _nearest_unsheared(sform), header.shape)
    if shear_mm > TOLERANCE_MM:
        raise InputError(
            f"'{path}' has a sheared sform (voxel axes at {_worst_axis_angle(sform):.1f} degrees instead of 90, up to "
            f"{shear_mm:.1f} mm from the nearest unsheared grid), which ITK would read moved or not at all; resample "
            "it onto an orthogonal grid with the program that made it, or save it from there as NRRD, which keeps a "
            "sheared grid."
        )
    if header.qform_code > 0:
        apart_mm = _largest_distance(sform, _qform_affine(header), header.shape)
        extent = np.ones(3)
        extent[: min(3, len(header.shape))] = header.shape[:3]  # a 2D image is one voxel deep
        field_diagonal = float(np.linalg.norm(np.linalg.norm(sform[:3, :3], axis=0) * extent))
        if apart_mm > max(TOLERANCE_MM, QFORM_SHARE_OF_FIELD * field_diagonal):
            raise InputError(
                f"'{path}' has an sform and a qform that place the voxels up to {apart_mm:.1f} mm apart, so its "
                "position is ambiguous; make them agree with the program that made it (e.g. fslorient "
                "-copysform2qform) and try again."
            )
    return _RAS_TO_LPS @ sform


def _itk_affine(image: sitk.Image) -> np.ndarray:
    """Voxel index -> LPS mm of the first three axes of an image as ITK read it."""
    dimension = image.GetDimension()
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(dimension, dimension)[:3, :3]
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(image.GetSpacing()[:3])
    affine[:3, 3] = image.GetOrigin()[:3]
    return affine


def check_itk_placement(image: sitk.Image, declared: np.ndarray, path: Path) -> None:
    """Refuse an image that ITK placed elsewhere than its NIfTI header declares.

    Args:
        image: the image as ``SimpleITK.ReadImage`` returned it (3D or more; 2D images are not
            compared, since ITK keeps only part of a 3D orientation for them).
        declared: the header's voxel-index -> LPS mm affine (:func:`declared_affine`).
        path: the file, for the message.

    Raises:
        InputError: a corner voxel lies more than :data:`TOLERANCE_MM` from its declared position.
    """
    if image.GetDimension() < 3:
        return
    moved_mm = _largest_distance(_itk_affine(image), declared, image.GetSize())
    if moved_mm > TOLERANCE_MM:
        raise InputError(
            f"ITK reads '{path}' up to {moved_mm:.1f} mm away from where its header places the voxels; "
            "save it as NRRD from the program that made it and try again."
        )

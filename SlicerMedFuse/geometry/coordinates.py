"""The one place that converts between ITK's LPS and Slicer's RAS world coordinates.

ITK/SimpleITK (and DICOM, NIfTI as read by ITK) describe physical space in LPS: +x toward the
patient's Left, +y Posterior, +z Superior. Slicer's scene uses RAS: +x Right, +y Anterior,
+z Superior. The two differ by negating x and y, so points, vectors (displacements) and
direction columns all convert with the same diagonal flip; 4x4 affines convert by conjugation.
Every module that crosses the Slicer/backend boundary calls these functions; nowhere else flips axes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "LPS_TO_RAS",
    "ijk_to_lps_matrix",
    "ijk_to_ras_matrix",
    "lps_to_ras_affine",
    "lps_to_ras_points",
    "lps_to_ras_vectors",
    "ras_to_lps_affine",
    "ras_to_lps_points",
    "ras_to_lps_vectors",
]

#: Diagonal flip between LPS and RAS (its own inverse), as a 3x3 matrix.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_FLIP = np.array([-1.0, -1.0, 1.0])
_FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])


def lps_to_ras_points(points: np.ndarray) -> np.ndarray:
    """Points (..., 3) in LPS mm -> RAS mm. Returns a new float64 array."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape[-1] != 3:
        raise ValueError(f"points must have a last axis of length 3, got shape {points.shape}")
    return points * _FLIP


ras_to_lps_points = lps_to_ras_points  # the flip is an involution
lps_to_ras_vectors = lps_to_ras_points  # displacements flip like points (no translation involved)
ras_to_lps_vectors = lps_to_ras_points


def lps_to_ras_affine(matrix: np.ndarray) -> np.ndarray:
    """A 4x4 affine acting on LPS points -> the same mapping acting on RAS points."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {matrix.shape}")
    return _FLIP4 @ matrix @ _FLIP4


ras_to_lps_affine = lps_to_ras_affine


def ijk_to_lps_matrix(spacing, origin, direction) -> np.ndarray:
    """4x4 matrix from voxel index (i, j, k) to LPS mm, from ITK geometry.

    Args:
        spacing: 3 voxel sizes in mm.
        origin: LPS position of voxel (0, 0, 0) in mm.
        direction: 9 values, row-major 3x3, columns are the LPS directions of i, j, k.
    """
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) @ np.diag(
        np.asarray(spacing, dtype=np.float64)
    )
    matrix[:3, 3] = np.asarray(origin, dtype=np.float64)
    return matrix


def ijk_to_ras_matrix(spacing, origin, direction) -> np.ndarray:
    """4x4 matrix from voxel index to RAS mm (what Slicer's ``SetIJKToRASMatrix`` takes)."""
    return _FLIP4 @ ijk_to_lps_matrix(spacing, origin, direction)

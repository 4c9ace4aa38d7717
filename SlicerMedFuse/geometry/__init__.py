"""Physical-space geometry: LPS/RAS conversion, voxel grids, resampling and axis orientation.

All positions are millimetres in ITK's LPS world unless a name says RAS; the LPS <-> RAS flip
lives only in :mod:`SlicerMedFuse.geometry.coordinates`.
"""

from __future__ import annotations

from SlicerMedFuse.geometry.coordinates import (
    LPS_TO_RAS,
    ijk_to_lps_matrix,
    ijk_to_ras_matrix,
    lps_to_ras_affine,
    lps_to_ras_points,
    lps_to_ras_vectors,
    ras_to_lps_affine,
    ras_to_lps_points,
    ras_to_lps_vectors,
)
from SlicerMedFuse.geometry.grid import ImageGeometry, check_same_grid, physical_overlap, same_grid
from SlicerMedFuse.geometry.orientation import from_canonical, orientation_code, to_canonical
from SlicerMedFuse.geometry.resample import INTERPOLATORS, resample_to_reference, resample_to_spacing

__all__ = [
    "INTERPOLATORS",
    "LPS_TO_RAS",
    "ImageGeometry",
    "check_same_grid",
    "from_canonical",
    "ijk_to_lps_matrix",
    "ijk_to_ras_matrix",
    "lps_to_ras_affine",
    "lps_to_ras_points",
    "lps_to_ras_vectors",
    "orientation_code",
    "physical_overlap",
    "ras_to_lps_affine",
    "ras_to_lps_points",
    "ras_to_lps_vectors",
    "resample_to_reference",
    "resample_to_spacing",
    "same_grid",
    "to_canonical",
]

"""Through-plane geometry of a thick-slice volume: slice axis, spacing d, thickness r, overlap o.

Notation follows SR4ZCT (Shi et al., MLMI 2023): slices are spaced d mm apart and each slice
averages r^z mm of tissue along the slice axis, so neighbouring slices overlap by o^z = r^z - d
(negative o^z means gaps between slices).
"""

from __future__ import annotations

import dataclasses

import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["SliceGeometry", "detect_slice_geometry", "DICOM_SLICE_THICKNESS"]

DICOM_SLICE_THICKNESS = "0018|0050"
#: Spacings within this relative difference count as equal (isotropic).
ISOTROPY_TOLERANCE = 0.05


@dataclasses.dataclass(frozen=True)
class SliceGeometry:
    """Slice geometry of a volume.

    Attributes:
        axis: index axis (0, 1 or 2 in SimpleITK's x, y, z order) along which slices are stacked.
        slice_spacing: d, distance between slice centres in mm.
        in_plane_spacing: the finer of the two other spacings, mm.
        thickness: r^z in mm (DICOM SliceThickness when known, else d, or the user's value).
        thickness_source: ``"user"``, ``"dicom"`` or ``"spacing"``.
    """

    axis: int
    slice_spacing: float
    in_plane_spacing: float
    thickness: float
    thickness_source: str

    @property
    def overlap(self) -> float:
        """o^z = r^z - d in mm (negative: gaps between slices)."""
        return self.thickness - self.slice_spacing

    @property
    def is_isotropic(self) -> bool:
        return self.slice_spacing <= self.in_plane_spacing * (1 + ISOTROPY_TOLERANCE)


def detect_slice_geometry(image: sitk.Image, thickness: float = 0.0) -> SliceGeometry:
    """Find the slice axis (the coarsest spacing) and the slice thickness.

    Args:
        image: a 3D image.
        thickness: the user's slice thickness in mm; 0 means detect (DICOM tag, else spacing).

    Raises:
        InputError: the image is not 3D or the thickness is not positive.
    """
    if image.GetDimension() != 3:
        raise InputError("Super-resolution needs a 3D volume; this image is 2D.")
    spacing = image.GetSpacing()
    axis = max(range(3), key=lambda index: spacing[index])
    in_plane = min(spacing[index] for index in range(3) if index != axis)
    if thickness < 0:
        raise InputError(f"Slice thickness must be positive; got {thickness} mm.")
    source = "user"
    if thickness == 0:
        thickness, source = spacing[axis], "spacing"
        if image.HasMetaDataKey(DICOM_SLICE_THICKNESS):
            try:
                thickness, source = float(image.GetMetaData(DICOM_SLICE_THICKNESS).strip()), "dicom"
            except ValueError:
                pass
    return SliceGeometry(axis, float(spacing[axis]), float(in_plane), float(thickness), source)

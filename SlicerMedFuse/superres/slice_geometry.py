"""Through-plane geometry of a thick-slice volume: slice axis, spacing d, thickness r, overlap o.

Notation follows SR4ZCT (Shi et al., MLMI 2023): slices are spaced d mm apart and each slice
averages r^z mm of tissue along the slice axis, so neighbouring slices overlap by o^z = r^z - d
(negative o^z means gaps between slices).
"""

from __future__ import annotations

import dataclasses

import SimpleITK as sitk

from SlicerMedFuse.errors import InputError

__all__ = ["DICOM_SLICE_THICKNESS", "SliceGeometry", "VolumeGrid", "detect_slice_geometry"]

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


@dataclasses.dataclass(frozen=True)
class VolumeGrid:
    """A volume's voxel grid without its voxels: all that planning and validation need.

    Lets a caller that holds the voxels elsewhere (a Slicer volume node) ask the backend's rules
    without building an image of the real size.

    Attributes:
        size: voxels per axis (SimpleITK index order).
        spacing: mm per axis.
        recorded_thickness: DICOM SliceThickness in mm, or None when none is recorded.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    recorded_thickness: float | None = None

    @classmethod
    def of(cls, image: sitk.Image) -> VolumeGrid:
        """The grid of ``image`` (its SliceThickness from the DICOM tag when present and numeric)."""
        recorded = None
        if image.HasMetaDataKey(DICOM_SLICE_THICKNESS):
            try:
                recorded = float(image.GetMetaData(DICOM_SLICE_THICKNESS).strip().split("\\")[0])
            except ValueError:
                recorded = None
        return cls(tuple(image.GetSize()), tuple(image.GetSpacing()), recorded)


def detect_slice_geometry(image: sitk.Image | VolumeGrid, thickness: float = 0.0) -> SliceGeometry:
    """Find the slice axis (the coarsest spacing) and the slice thickness.

    Args:
        image: a 3D image, or its :class:`VolumeGrid`.
        thickness: the user's slice thickness in mm; 0 means detect (DICOM tag, else spacing).

    Raises:
        InputError: the image is not 3D (or is a single slice) or the thickness is not positive.
    """
    grid = image if isinstance(image, VolumeGrid) else VolumeGrid.of(image)
    if len(grid.size) != 3:
        raise InputError(f"Super-resolution needs a 3D volume; this image is {len(grid.size)}D.")
    if min(grid.size) < 2:
        raise InputError(
            "Super-resolution needs a 3D volume; this image is a single slice "
            f"({' x '.join(str(n) for n in grid.size)} voxels): load the whole series."
        )
    spacing = grid.spacing
    axis = max(range(3), key=lambda index: spacing[index])
    in_plane = min(spacing[index] for index in range(3) if index != axis)
    if thickness < 0:
        raise InputError(f"Slice thickness must be positive; got {thickness} mm.")
    source = "user"
    if thickness == 0:
        thickness, source = spacing[axis], "spacing"
        if grid.recorded_thickness is not None and grid.recorded_thickness > 0:
            thickness, source = grid.recorded_thickness, "dicom"
    return SliceGeometry(axis, float(spacing[axis]), float(in_plane), float(thickness), source)

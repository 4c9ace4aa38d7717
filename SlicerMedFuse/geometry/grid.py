"""Voxel grids in physical space: the typed geometry object and grid comparisons (DESIGN rule 1).

An :class:`ImageGeometry` is what ITK calls the image's information: ``size`` (i, j, k voxels),
``spacing`` (mm), ``origin`` (LPS mm of voxel (0, 0, 0)'s centre) and ``direction`` (row-major
3x3 whose *columns* are the LPS unit directions of i, j, k). Multi-input tasks compare grids with
:func:`check_same_grid` and resample mismatching inputs onto the reference's grid, never by index.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry.coordinates import ijk_to_lps_matrix

__all__ = ["ImageGeometry", "check_same_grid", "physical_overlap", "same_grid"]


def _fmt(values: Sequence[float], digits: int = 4) -> str:
    return "(" + ", ".join(f"{v:.{digits}g}" for v in values) + ")"


@dataclasses.dataclass(frozen=True)
class ImageGeometry:
    """The voxel grid of an image in LPS physical space (2D or 3D).

    Attributes:
        size: voxels along (i, j[, k]).
        spacing: voxel size in mm along (i, j[, k]).
        origin: LPS position in mm of the centre of voxel (0, 0[, 0]).
        direction: row-major d x d matrix (9 values in 3D); column c is the LPS unit direction of index axis c.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    def __post_init__(self) -> None:
        dim = len(self.size)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        object.__setattr__(self, "direction", tuple(float(s) for s in self.direction))
        if len(self.spacing) != dim or len(self.origin) != dim or len(self.direction) != dim * dim:
            raise ValueError(
                f"geometry needs {dim} spacing, {dim} origin and {dim * dim} direction values, got "
                f"{len(self.spacing)}, {len(self.origin)} and {len(self.direction)}"
            )
        if any(s <= 0 for s in self.spacing):
            raise ValueError(f"spacing must be positive, got {self.spacing}")

    @classmethod
    def from_image(cls, image: sitk.Image) -> ImageGeometry:
        """The geometry of a SimpleITK image."""
        return cls(image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection())

    @property
    def dimension(self) -> int:
        return len(self.size)

    @property
    def direction_matrix(self) -> np.ndarray:
        """The direction as a (d, d) float64 array; columns are the index axes' LPS directions."""
        return np.asarray(self.direction, dtype=np.float64).reshape(self.dimension, self.dimension)

    def apply_to(self, image: sitk.Image) -> sitk.Image:
        """Set this spacing, origin and direction on ``image`` (in place) and return it.

        Raises:
            ValueError: when ``image``'s size differs from :attr:`size`.
        """
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"cannot apply the geometry of a {self.size} grid to an image of size {image.GetSize()}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image

    def _require_3d(self, what: str) -> None:
        if self.dimension != 3:
            raise ValueError(f"{what} needs a 3D geometry, got {self.dimension}D")

    def ijk_to_lps(self) -> np.ndarray:
        """The (4, 4) affine from voxel index (i, j, k) to LPS mm (3D only)."""
        self._require_3d("ijk_to_lps")
        return ijk_to_lps_matrix(self.spacing, self.origin, self.direction)

    def corners_lps(self) -> np.ndarray:
        """The 8 corners of the region the voxels cover, in LPS mm: shape (8, 3) (3D only).

        The region extends half a voxel beyond the outer voxel centres (indices -0.5 and
        size - 0.5), so a one-voxel image has the volume of one voxel.
        """
        self._require_3d("corners_lps")
        ranges = [(-0.5, s - 0.5) for s in self.size]
        ijk = np.array(list(itertools.product(*ranges)), dtype=np.float64)  # (8, 3)
        matrix = self.ijk_to_lps()
        return ijk @ matrix[:3, :3].T + matrix[:3, 3]

    def bounds_lps(self) -> np.ndarray:
        """Axis-aligned LPS bounding box of :meth:`corners_lps`: shape (2, 3), rows = (min, max) in mm."""
        corners = self.corners_lps()
        return np.stack([corners.min(axis=0), corners.max(axis=0)])

    def differences(self, other: ImageGeometry, tolerance: float = 1e-4) -> list[str]:
        """What differs between two grids, as short phrases (empty when :meth:`is_close`).

        Args:
            other: the grid to compare with.
            tolerance: relative tolerance for spacing, origin (in units of the largest voxel
                size) and absolute tolerance for the direction cosines.
        """
        if self.dimension != other.dimension:
            return [f"dimension {self.dimension}D vs {other.dimension}D"]
        found = []
        if self.size != other.size:
            found.append(f"size {'x'.join(map(str, self.size))} vs {'x'.join(map(str, other.size))}")
        spacing_a, spacing_b = np.asarray(self.spacing), np.asarray(other.spacing)
        if np.any(np.abs(spacing_a - spacing_b) > tolerance * np.maximum(spacing_a, spacing_b)):
            found.append(f"spacing {_fmt(self.spacing)} vs {_fmt(other.spacing)} mm")
        scale = max(max(self.spacing), max(other.spacing))
        if np.any(np.abs(np.asarray(self.origin) - np.asarray(other.origin)) > tolerance * scale):
            found.append(f"origin {_fmt(self.origin, 6)} vs {_fmt(other.origin, 6)} mm")
        if np.any(np.abs(np.asarray(self.direction) - np.asarray(other.direction)) > tolerance):
            found.append(f"direction {_fmt(self.direction, 3)} vs {_fmt(other.direction, 3)}")
        return found

    def is_close(self, other: ImageGeometry, tolerance: float = 1e-4) -> bool:
        """True when both grids have the same size and, within ``tolerance``, spacing, origin and direction.

        Spacing and origin are compared relative to the voxel size (``tolerance`` x the largest
        spacing), direction cosines absolutely.
        """
        return not self.differences(other, tolerance)


def _geometry(item: sitk.Image | ImageGeometry) -> ImageGeometry:
    return item if isinstance(item, ImageGeometry) else ImageGeometry.from_image(item)


def same_grid(a: sitk.Image | ImageGeometry, b: sitk.Image | ImageGeometry, tolerance: float = 1e-4) -> bool:
    """True when ``a`` and ``b`` share a voxel grid (see :meth:`ImageGeometry.is_close`)."""
    return _geometry(a).is_close(_geometry(b), tolerance)


def check_same_grid(images: Mapping[str, sitk.Image], reference_role: str, tolerance: float = 1e-4) -> None:
    """Raise :class:`InputError` unless every image lies on the grid of ``images[reference_role]``.

    Args:
        images: role -> image.
        reference_role: the role whose grid the others must share.
        tolerance: see :meth:`ImageGeometry.is_close`.

    Raises:
        InputError: naming the first mismatching role, what differs and the fix.
        KeyError: ``reference_role`` is not in ``images``.
    """
    if reference_role not in images:
        raise KeyError(f"reference role {reference_role!r} is not among the images {sorted(images)}")
    reference = ImageGeometry.from_image(images[reference_role])
    for role, image in images.items():
        if role == reference_role:
            continue
        found = ImageGeometry.from_image(image).differences(reference, tolerance)
        if found:
            raise InputError(
                f"Input '{role}' is not on the voxel grid of '{reference_role}' ({'; '.join(found)}); resample it onto "
                "the reference, e.g. with resample_to_reference, or register it first."
            )


def physical_overlap(a: sitk.Image | ImageGeometry, b: sitk.Image | ImageGeometry) -> float:
    """Fraction of the smaller image's bounding-box volume that the two boxes share (0..1).

    Boxes are the axis-aligned LPS bounding boxes of :meth:`ImageGeometry.bounds_lps` (3D).
    0 means the images do not overlap in space (a different patient position or a wrong
    origin); 1 means the smaller box lies inside the larger.
    """
    box_a, box_b = _geometry(a).bounds_lps(), _geometry(b).bounds_lps()
    shared = np.clip(np.minimum(box_a[1], box_b[1]) - np.maximum(box_a[0], box_b[0]), 0.0, None)
    smaller = min(float(np.prod(box_a[1] - box_a[0])), float(np.prod(box_b[1] - box_b[0])))
    if smaller <= 0.0:
        return 0.0
    return float(min(np.prod(shared) / smaller, 1.0))

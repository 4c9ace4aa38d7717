"""The one preprocessing of a head CT for the hemorrhage networks, shared by training and inference.

:func:`prepare_ct` is called by the training data cache and by the task, so a model always sees at
inference exactly what it saw in training: the CT reoriented to a canonical axis order (no
interpolation), resampled (linear, in physical space) to the model's voxel spacing, then mapped
window by window to ``[-1, 1]`` (the first window ``brain`` is BHSD's clip to [-40, 120] HU and
``(HU - 40) / 80``). :func:`prepare_labels` puts a label map on the same grid for training.

The settings travel in the model bundle's manifest (``preprocessing``) as
:meth:`HemorrhagePreprocessing.to_dict` writes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.geometry import resample_to_reference, resample_to_spacing, to_canonical
from SlicerMedFuse.hemorrhage.preprocessing import BRAIN_WINDOW, CTWindow, multi_window, resolve_windows

__all__ = ["HemorrhagePreprocessing", "PreparedCT", "prepare_ct", "prepare_labels"]


@dataclasses.dataclass(frozen=True)
class HemorrhagePreprocessing:
    """How a CT becomes network input, and the patch the network was trained on.

    Attributes:
        spacing_mm: Voxel spacing of the network grid, ``(i, j, k)`` of the canonical image (mm);
            for ``"RAS"``: right-left, posterior-anterior, inferior-superior.
        windows: CT windows, one input channel (and, for the multi-window network, one path) each.
        orientation: Canonical orientation code of the network grid (index axes, see
            :func:`~SlicerMedFuse.geometry.to_canonical`).
        patch_size_zyx: Training patch and sliding-window size, array order ``(z, y, x)`` = ``(k, j, i)``.
        mirror_axes: Array axes ``(z, y, x)`` = 0, 1, 2 flipped in training augmentation and in
            test-time mirroring (2 = left-right for ``"RAS"``).
    """

    spacing_mm: tuple[float, float, float]
    windows: tuple[CTWindow, ...] = (BRAIN_WINDOW,)
    orientation: str = "RAS"
    patch_size_zyx: tuple[int, int, int] = (32, 128, 128)
    mirror_axes: tuple[int, ...] = (2,)

    def __post_init__(self) -> None:
        if len(self.spacing_mm) != 3 or not all(float(s) > 0 for s in self.spacing_mm):
            raise ValueError(f"spacing_mm needs three positive values (mm), got {self.spacing_mm}")
        if len(self.patch_size_zyx) != 3 or not all(int(p) > 0 for p in self.patch_size_zyx):
            raise ValueError(f"patch_size_zyx needs three positive values, got {self.patch_size_zyx}")
        if not self.windows:
            raise ValueError("at least one CT window is needed")
        if not all(a in (0, 1, 2) for a in self.mirror_axes):
            raise ValueError(f"mirror_axes must be array axes 0, 1 or 2, got {self.mirror_axes}")

    @property
    def channels(self) -> int:
        """Number of input channels (windows)."""
        return len(self.windows)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """The spacing in array order ``(z, y, x)``."""
        return (self.spacing_mm[2], self.spacing_mm[1], self.spacing_mm[0])

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``preprocessing`` object (JSON-ready)."""
        return {
            "spacing_mm": [float(s) for s in self.spacing_mm],
            "orientation": self.orientation,
            "windows": [{"name": w.name, "level": w.level, "width": w.width} for w in self.windows],
            "intensity": "CT windows mapped to [-1, 1]; 'brain' (L40/W160) is BHSD's clip [-40, 120] HU, (HU-40)/80",
            "patch_size_zyx": [int(p) for p in self.patch_size_zyx],
            "mirror_axes": [int(a) for a in self.mirror_axes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], model_name: str = "the model") -> HemorrhagePreprocessing:
        """Read a manifest's ``preprocessing`` object.

        Raises:
            ModelError: A field is missing or malformed (the message names it).
        """
        try:
            windows = tuple(
                CTWindow(str(w["name"]), float(w["level"]), float(w["width"])) if isinstance(w, Mapping) else w
                for w in data.get("windows", [{"name": "brain", "level": 40.0, "width": 160.0}])
            )
            return cls(
                spacing_mm=tuple(float(s) for s in data["spacing_mm"]),  # type: ignore[arg-type]
                windows=resolve_windows(windows),
                orientation=str(data.get("orientation", "RAS")),
                patch_size_zyx=tuple(int(p) for p in data["patch_size_zyx"]),  # type: ignore[arg-type]
                mirror_axes=tuple(int(a) for a in data.get("mirror_axes", (2,))),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(
                f"The preprocessing settings of {model_name} are invalid ({type(error).__name__}: {error}); "
                "the bundle is not a hemorrhage model of this version."
            ) from None

    def with_windows(self, windows: Sequence[str | CTWindow]) -> HemorrhagePreprocessing:
        """A copy with other windows."""
        return dataclasses.replace(self, windows=resolve_windows(windows))


@dataclasses.dataclass(frozen=True)
class PreparedCT:
    """A CT on the network grid.

    Attributes:
        array: Network input ``(C, z, y, x)`` float32, each channel in [-1, 1].
        grid: The resampled CT (float32 HU) whose geometry is the network grid.
    """

    array: np.ndarray
    grid: sitk.Image


def prepare_ct(ct: sitk.Image, preprocessing: HemorrhagePreprocessing) -> PreparedCT:
    """Reorient, resample and window a CT for the network (training and inference alike).

    Args:
        ct: Head CT in HU, any orientation, spacing and pixel type.
        preprocessing: The model's settings.

    Returns:
        A :class:`PreparedCT`; ``array.shape == (C, *reversed(grid.GetSize()))``.
    """
    canonical = to_canonical(ct, preprocessing.orientation)
    grid = resample_to_spacing(sitk.Cast(canonical, sitk.sitkFloat32), preprocessing.spacing_mm)
    array = multi_window(sitk.GetArrayViewFromImage(grid), preprocessing.windows)
    return PreparedCT(array=np.ascontiguousarray(array, dtype=np.float32), grid=grid)


def prepare_labels(labels: sitk.Image, grid: sitk.Image) -> np.ndarray:
    """A label map on the network grid of :func:`prepare_ct` (label-aware resampling), ``(z, y, x)`` uint8."""
    resampled = resample_to_reference(sitk.Cast(labels, sitk.sitkUInt8), grid, interpolation="label")
    return sitk.GetArrayFromImage(resampled)

"""Post-processing of a hemorrhage label map: small-component removal and per-class measurements.

Components are 26-connected (face, edge and corner neighbours) per class; a component's volume is
its voxel count times the voxel volume (mL = cm^3). Slice ranges are indices along the image's
third index axis ``k`` (the slice axis of an axial CT), 0-based and inclusive.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS

__all__ = ["ClassMeasurement", "measure_classes", "remove_small_components"]


@dataclasses.dataclass(frozen=True)
class ClassMeasurement:
    """One hemorrhage class in a label map.

    Attributes:
        value: Label value (1-5).
        abbreviation: ``EDH``, ``IPH``, ``IVH``, ``SAH`` or ``SDH``.
        name: Label name.
        volume_ml: Total volume (mL).
        components: Number of connected components.
        slice_range: First and last slice index ``k`` (0-based, inclusive) holding the class, or None.
    """

    value: int
    abbreviation: str
    name: str
    volume_ml: float
    components: int
    slice_range: tuple[int, int] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "name": self.name,
            "volume_ml": round(self.volume_ml, 3),
            "components": self.components,
            "slice_range": list(self.slice_range) if self.slice_range else None,
        }


def _components(mask: sitk.Image) -> sitk.Image:
    return sitk.ConnectedComponent(mask, True)


def remove_small_components(labels: sitk.Image, min_volume_ml: float) -> tuple[sitk.Image, dict[str, int]]:
    """Set every per-class connected component smaller than ``min_volume_ml`` to background.

    Args:
        labels: uint8 label map (0 background, 1-5 classes).
        min_volume_ml: Smallest component kept (mL); 0 keeps everything.

    Returns:
        The cleaned label map (same grid, uint8) and the number of components removed per class.
    """
    if min_volume_ml <= 0:
        return labels, {}
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    min_voxels = int(np.ceil(min_volume_ml / voxel_ml))
    array = sitk.GetArrayFromImage(labels)
    removed = {}
    for label in HEMORRHAGE_LABELS:
        mask = array == label.value
        if not mask.any():
            continue
        components = sitk.GetArrayFromImage(_components(sitk.GetImageFromArray(mask.astype(np.uint8))))
        drop = np.bincount(components.ravel()) < min_voxels
        drop[0] = False  # background of the mask
        if drop.any():
            array[drop[components]] = 0
            removed[_abbreviation(label.value)] = int(np.count_nonzero(drop))
    cleaned = sitk.GetImageFromArray(array.astype(np.uint8))
    cleaned.CopyInformation(labels)
    return cleaned, removed


def _abbreviation(value: int) -> str:
    return ("", "EDH", "IPH", "IVH", "SAH", "SDH")[value]


def measure_classes(labels: sitk.Image) -> dict[str, ClassMeasurement]:
    """Volume (mL), component count and slice range of every class, keyed ``EDH IPH IVH SAH SDH``."""
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    array = sitk.GetArrayViewFromImage(labels)
    counts = np.bincount(array.ravel(), minlength=6)
    measured = {}
    for label in HEMORRHAGE_LABELS:
        abbreviation = _abbreviation(label.value)
        n_components, slices = 0, None
        if counts[label.value]:
            mask = array == label.value
            image = sitk.GetImageFromArray(mask.astype(np.uint8))
            n_components = int(sitk.GetArrayFromImage(_components(image)).max())
            present = np.flatnonzero(mask.any(axis=(1, 2)))
            slices = (int(present[0]), int(present[-1]))
        measured[abbreviation] = ClassMeasurement(
            label.value, abbreviation, label.name, float(counts[label.value]) * voxel_ml, n_components, slices
        )
    return measured

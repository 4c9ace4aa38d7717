"""Post-processing of a hemorrhage label map: small-component removal and per-class measurements.

Components are 26-connected (face, edge and corner neighbours) per class; a component's volume is
its voxel count times the voxel volume (mL = cm^3). Slice ranges are indices along the image's
third index axis ``k`` (the slice axis of an axial CT), 0-based and inclusive.

The minimum component volume may differ per class. :func:`choose_min_component_volumes` picks one
per class on validation cases the way nnU-Net v2 decides its post-processing on cross-validation
(``determine_postprocessing``: apply a filter only when it raises the validation Dice), with
one difference: a case without the class counts as Dice 1 when nothing of it is predicted and 0
otherwise, so the choice weighs false positives on bleed-free cases as well as the bleeds' Dice.
Classes are independent here (a removed component becomes background, which no other class's
components depend on), so each class's threshold is chosen on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.hemorrhage.labels import CLASS_ABBREVIATIONS, HEMORRHAGE_LABELS

__all__ = [
    "ClassMeasurement",
    "MIN_VOLUME_CANDIDATES_ML",
    "choose_min_component_volumes",
    "measure_classes",
    "remove_small_components",
    "resolve_min_volumes",
]

#: Thresholds (mL) tried per class by :func:`choose_min_component_volumes`: 0.05 mL is the task's
#: default (a few voxels of a 0.5 x 0.5 x 5 mm CT); larger thresholds would delete whole bleeds a
#: radiologist must see (a small EDH or IPH), so the list stops at 5 mL.
MIN_VOLUME_CANDIDATES_ML: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


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


def resolve_min_volumes(floor_ml: float, per_class_ml: Mapping[str, float] | None = None) -> dict[str, float]:
    """Minimum component volume per class (``EDH IPH IVH SAH SDH``): the larger of ``floor_ml`` and the class's own.

    Args:
        floor_ml: Applies to every class (the user's ``min_component_ml``).
        per_class_ml: Per-class values (a model bundle's tuned post-processing); missing classes get the floor.
    """
    per_class_ml = per_class_ml or {}
    return {name: max(float(floor_ml), float(per_class_ml.get(name, 0.0))) for name in CLASS_ABBREVIATIONS}


def _component_sizes(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Component index per voxel (0 outside ``mask``) and voxel count per component index."""
    components = sitk.GetArrayFromImage(_components(sitk.GetImageFromArray(mask.astype(np.uint8))))
    return components, np.bincount(components.ravel())


def remove_small_components(
    labels: sitk.Image, min_volume_ml: float | Mapping[str, float]
) -> tuple[sitk.Image, dict[str, int]]:
    """Set every per-class connected component smaller than its class's minimum volume to background.

    Args:
        labels: uint8 label map (0 background, 1-5 classes).
        min_volume_ml: Smallest component kept (mL): one value for every class, or one per class
            keyed ``EDH IPH IVH SAH SDH`` (missing classes keep everything); 0 keeps everything.

    Returns:
        The cleaned label map (same grid, uint8) and the number of components removed per class.
    """
    if not isinstance(min_volume_ml, Mapping):
        min_volume_ml = dict.fromkeys(CLASS_ABBREVIATIONS, float(min_volume_ml))
    if all(float(v) <= 0 for v in min_volume_ml.values()):
        return labels, {}
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    array = sitk.GetArrayFromImage(labels)
    removed = {}
    for label in HEMORRHAGE_LABELS:
        threshold = float(min_volume_ml.get(_abbreviation(label.value), 0.0))
        mask = array == label.value
        if threshold <= 0 or not mask.any():
            continue
        components, sizes = _component_sizes(mask)
        drop = sizes < int(np.ceil(threshold / voxel_ml))
        drop[0] = False  # background of the mask
        if drop.any():
            array[drop[components]] = 0
            removed[_abbreviation(label.value)] = int(np.count_nonzero(drop))
    cleaned = sitk.GetImageFromArray(array.astype(np.uint8))
    cleaned.CopyInformation(labels)
    return cleaned, removed


def _dice_after_filter(
    prediction: np.ndarray, truth: np.ndarray, voxel_ml: float, thresholds: Sequence[float]
) -> list[float]:
    """Dice of one class in one case after removing components below each threshold (empty vs empty = 1)."""
    truth_voxels = int(np.count_nonzero(truth))
    if not prediction.any():
        return [1.0 if truth_voxels == 0 else 0.0] * len(thresholds)
    components, sizes = _component_sizes(prediction)
    overlap = np.bincount(components.ravel(), weights=truth.ravel().astype(np.float64), minlength=len(sizes))
    sizes, overlap = sizes[1:], overlap[1:]
    scores = []
    for threshold in thresholds:
        kept = sizes >= int(np.ceil(threshold / voxel_ml))
        predicted, hit = int(sizes[kept].sum()), float(overlap[kept].sum())
        if predicted + truth_voxels == 0:
            scores.append(1.0)
        else:
            scores.append(2.0 * hit / (predicted + truth_voxels))
    return scores


def choose_min_component_volumes(
    cases: Iterable[tuple[sitk.Image, sitk.Image]],
    candidates_ml: Sequence[float] = MIN_VOLUME_CANDIDATES_ML,
) -> dict[str, Any]:
    """Choose each class's minimum component volume on validation cases (predictions made without any filter).

    For every class and candidate threshold, the class's Dice is averaged over all cases, counting a
    case without the class as 1 when nothing of it is predicted after the filter and 0 otherwise.
    The smallest candidate with the best mean wins (ties keep more of the prediction).

    Args:
        cases: ``(prediction, ground truth)`` label-map pairs on the same grid, predicted with no
            component filter (``min_component_ml=0``) so that every threshold can be tried.
        candidates_ml: Thresholds to try (mL), ascending.

    Returns:
        ``{"min_component_ml": {class: mL}, "mean_dice": {class: {threshold: Dice}}, "cases": n,
        "candidates_ml": [...]}``: the choice and the evidence for it.

    Raises:
        ValueError: No case, or no candidate.
    """
    candidates = sorted(float(c) for c in candidates_ml)
    if not candidates:
        raise ValueError("give at least one candidate threshold")
    totals = {name: np.zeros(len(candidates)) for name in CLASS_ABBREVIATIONS}
    count = 0
    for prediction, truth in cases:
        if prediction.GetSize() != truth.GetSize():
            raise ValueError(
                f"a prediction of size {prediction.GetSize()} does not match its labels' {truth.GetSize()}"
            )
        voxel_ml = float(np.prod(truth.GetSpacing())) / 1000.0
        predicted = sitk.GetArrayViewFromImage(prediction)
        expected = sitk.GetArrayViewFromImage(truth)
        for label in HEMORRHAGE_LABELS:
            scores = _dice_after_filter(predicted == label.value, expected == label.value, voxel_ml, candidates)
            totals[_abbreviation(label.value)] += scores
        count += 1
    if count == 0:
        raise ValueError("give at least one validation case")
    chosen, evidence = {}, {}
    for name, total in totals.items():
        means = total / count
        best = int(np.flatnonzero(means >= means.max() - 1e-12)[0])
        chosen[name] = candidates[best]
        evidence[name] = {f"{c:g}": round(float(m), 4) for c, m in zip(candidates, means, strict=True)}
    return {"min_component_ml": chosen, "mean_dice": evidence, "cases": count, "candidates_ml": candidates}


def _abbreviation(value: int) -> str:
    return CLASS_ABBREVIATIONS[value - 1]


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

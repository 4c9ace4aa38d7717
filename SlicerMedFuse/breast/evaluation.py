"""The breast paper's metrics (Dice, sensitivity, relative area difference) plus HD95, per case and averaged.

Per case, on binary masks (``prediction``, ``truth``), in percent like Table 1:

* Dice ``2|P n G| / (|P| + |G|)`` and sensitivity ``|P n G| / |G|``: MONAI's
  :func:`~monai.metrics.compute_dice` and confusion-matrix metric;
* relative area difference ``| |P| - |G| | / |G|`` (the paper's third metric; it evaluates 2D slices,
  so areas; on volumes it is the relative volume difference);
* HD95 (mm): the larger of the two directed 95th-percentile distances between the mask edges
  (MONAI's definition of ``compute_hausdorff_distance(percentile=95)``: edge voxels are mask voxels
  with a background neighbour). MONAI's implementation needs scipy, which the project does not
  install, so distances come from SimpleITK's Maurer distance map (exact Euclidean, in mm).

A case without ground-truth mass has no Dice, sensitivity, area difference or HD95; it counts as
a false-positive case when anything is predicted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import same_grid
from SlicerMedFuse.io import read_image

__all__ = ["CaseScores", "EvaluationResult", "evaluate_folders", "format_table", "hd95_mm", "score_case"]

METRICS = ("dice", "sensitivity", "relative_area_difference", "hd95_mm")


@dataclasses.dataclass(frozen=True)
class CaseScores:
    """Scores of one case (percent for the ratios, mm for HD95; None where undefined)."""

    case_id: str
    dice: float | None
    sensitivity: float | None
    relative_area_difference: float | None
    hd95_mm: float | None
    truth_voxels: int
    predicted_voxels: int


def _edges(mask: sitk.Image) -> sitk.Image:
    return sitk.And(mask, sitk.Not(sitk.BinaryErode(mask, [1] * mask.GetDimension(), sitk.sitkBox)))


def hd95_mm(prediction: sitk.Image, truth: sitk.Image) -> float | None:
    """95th-percentile symmetric Hausdorff distance between the mask edges (mm); None if either is empty."""
    a, b = sitk.Cast(prediction > 0, sitk.sitkUInt8), sitk.Cast(truth > 0, sitk.sitkUInt8)
    edges_a, edges_b = _edges(a), _edges(b)
    on_a, on_b = sitk.GetArrayViewFromImage(edges_a) > 0, sitk.GetArrayViewFromImage(edges_b) > 0
    if not on_a.any() or not on_b.any():
        return None
    directed = []
    for source, target in ((on_a, edges_b), (on_b, edges_a)):
        distance = sitk.SignedMaurerDistanceMap(
            target, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
        )
        directed.append(float(np.percentile(np.abs(sitk.GetArrayViewFromImage(distance)[source]), 95)))
    return max(directed)


def score_case(prediction: sitk.Image, truth: sitk.Image, case_id: str = "") -> CaseScores:
    """Score one predicted mass mask against the truth (same grid)."""
    import torch
    from monai.metrics import compute_confusion_matrix_metric, compute_dice, get_confusion_matrix

    if not same_grid(prediction, truth):
        raise InputError(
            f"The prediction of case '{case_id}' is not on the grid of its ground truth; resample it first."
        )
    p = torch.from_numpy(sitk.GetArrayFromImage(prediction) > 0)[None, None].float()
    g = torch.from_numpy(sitk.GetArrayFromImage(truth) > 0)[None, None].float()
    truth_voxels, predicted_voxels = int(g.sum()), int(p.sum())
    if truth_voxels == 0:
        return CaseScores(case_id, None, None, None, None, 0, predicted_voxels)
    dice = float(compute_dice(p, g, include_background=True, ignore_empty=False)[0, 0])
    confusion = get_confusion_matrix(p, g, include_background=True)
    sensitivity = float(compute_confusion_matrix_metric("sensitivity", confusion)[0, 0])
    area = abs(predicted_voxels - truth_voxels) / truth_voxels
    return CaseScores(
        case_id,
        100.0 * dice,
        100.0 * sensitivity,
        100.0 * area,
        hd95_mm(prediction, truth),
        truth_voxels,
        predicted_voxels,
    )


@dataclasses.dataclass
class EvaluationResult:
    """Per-case scores and their means and standard deviations over the cases with a mass."""

    cases: list[CaseScores]

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {"cases": len(self.cases)}
        for name in METRICS:
            values = [getattr(c, name) for c in self.cases if getattr(c, name) is not None]
            result[name] = {
                "mean": round(float(np.mean(values)), 2) if values else None,
                "sd": round(float(np.std(values)), 2) if values else None,
                "n": len(values),
            }
        empty = [c for c in self.cases if c.truth_voxels == 0]
        result["false_positive_cases"] = sum(c.predicted_voxels > 0 for c in empty)
        result["cases_without_mass"] = len(empty)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "per_case": [dataclasses.asdict(c) for c in self.cases]}


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, file_ending: str = ".nii.gz") -> EvaluationResult:
    """Score every ground-truth file of ``gt_dir`` against the same-named file of ``pred_dir``."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    truths = sorted(p for p in gt_dir.glob(f"*{file_ending}"))
    if not truths:
        raise InputError(f"The folder {gt_dir} holds no {file_ending} label maps.")
    cases = []
    for truth in truths:
        prediction = pred_dir / truth.name
        if not prediction.is_file():
            raise InputError(f"There is no prediction {prediction} for the ground truth {truth.name}.")
        cases.append(score_case(read_image(prediction), read_image(truth), truth.name[: -len(file_ending)]))
    return EvaluationResult(cases)


def format_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """Markdown table of summaries (Table 1's columns plus HD95): ``[(title, summary), ...]``."""

    def cell(entry: dict[str, Any]) -> str:
        if entry["mean"] is None or math.isnan(entry["mean"]):
            return "–"
        return f"{entry['mean']:.1f} ± {entry['sd']:.1f}"

    lines = [
        "| Model | Dice (%) | Sensitivity (%) | Rel. area diff. (%) | HD95 (mm) |",
        "|---|---|---|---|---|",
    ]
    for title, summary in rows:
        lines.append(f"| {title} | " + " | ".join(cell(summary[m]) for m in METRICS) + " |")
    return "\n".join(lines)

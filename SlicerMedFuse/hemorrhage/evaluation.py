"""BHSD evaluation: per-class Dice (Table 1 layout) and false positives, from prediction and label folders.

Dice per class and case uses MONAI's :func:`~monai.metrics.compute_dice` on one-hot maps; a class
absent from a case's ground truth gives no Dice for that case (``ignore_empty``), so each class's
Dice is its mean over the cases that contain it, and ``Mean`` is the mean of the five classes.
BHSD does not define its FP column; here a *false positive* is a (case, class) pair where the
class is absent from the ground truth but predicted: ``fp_rate`` is their share of all
class-absent pairs and ``fp_per_case`` their mean number per case (reported per class and overall),
with the falsely predicted volume in mL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.hemorrhage.labels import CLASS_ABBREVIATIONS

__all__ = ["CLASS_NAMES", "CaseScores", "EvaluationResult", "evaluate_folders", "evaluate_pair", "format_table"]

CLASS_NAMES: tuple[str, ...] = CLASS_ABBREVIATIONS
"""Column order of BHSD Table 1: EDH IPH IVH SAH SDH."""

_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


@dataclasses.dataclass(frozen=True)
class CaseScores:
    """One case: Dice per class (None when the class is absent from the ground truth), FP classes and volumes."""

    case_id: str
    dice: dict[str, float | None]
    false_positive: dict[str, bool]
    fp_volume_ml: dict[str, float]


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Scores of a folder of predictions.

    Attributes:
        cases: Per-case scores.
        dice: Mean Dice per class over the cases that contain it (None if no case does), in [0, 1].
        mean_dice: Mean of the available class Dice values.
        fp_rate: Per class and ``"all"``: share of GT-absent (case, class) pairs that are predicted.
        fp_per_case: Mean number of falsely predicted classes per case.
        cases_with_class: Per class, how many ground-truth cases contain it.
    """

    cases: tuple[CaseScores, ...]
    dice: dict[str, float | None]
    mean_dice: float | None
    fp_rate: dict[str, float | None]
    fp_per_case: float
    cases_with_class: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _case_id(path: Path) -> str:
    name = path.name
    for ending in _ENDINGS:
        if name.endswith(ending):
            return name[: -len(ending)]
    return path.stem


def evaluate_pair(prediction: sitk.Image, truth: sitk.Image, case_id: str = "") -> CaseScores:
    """Score one predicted label map against its ground truth (same grid).

    Raises:
        InputError: The two maps have different sizes.
    """
    import torch
    from monai.metrics import compute_dice
    from monai.networks.utils import one_hot

    if prediction.GetSize() != truth.GetSize():
        raise InputError(
            f"Prediction and ground truth of case '{case_id}' have different sizes {prediction.GetSize()} and "
            f"{truth.GetSize()}; predict on the ground truth's grid."
        )
    pred = torch.from_numpy(sitk.GetArrayFromImage(prediction).astype(np.int64))[None, None]
    gt = torch.from_numpy(sitk.GetArrayFromImage(truth).astype(np.int64))[None, None]
    n = len(CLASS_NAMES) + 1
    if int(pred.max()) >= n or int(gt.max()) >= n or int(pred.min()) < 0 or int(gt.min()) < 0:
        raise InputError(f"Case '{case_id}' has label values outside 0-5; give BHSD label maps.")
    dice = compute_dice(one_hot(pred, n), one_hot(gt, n), include_background=False, ignore_empty=True)[0]
    voxel_ml = float(np.prod(truth.GetSpacing())) / 1000.0
    pred_counts = torch.bincount(pred.flatten(), minlength=n)
    gt_counts = torch.bincount(gt.flatten(), minlength=n)
    scores, fp, fp_ml = {}, {}, {}
    for i, name in enumerate(CLASS_NAMES, start=1):
        present = int(gt_counts[i]) > 0
        scores[name] = float(dice[i - 1]) if present else None
        fp[name] = (not present) and int(pred_counts[i]) > 0
        fp_ml[name] = float(pred_counts[i]) * voxel_ml if not present else 0.0
    return CaseScores(case_id, scores, fp, fp_ml)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path) -> EvaluationResult:
    """Score every ground-truth case of ``gt_dir`` against the same-named file in ``pred_dir``.

    Raises:
        InputError: A folder is missing or empty, or a prediction is missing.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for folder in (pred_dir, gt_dir):
        if not folder.is_dir():
            raise InputError(f"The folder {folder} does not exist.")
    truths = {_case_id(p): p for p in sorted(gt_dir.iterdir()) if p.name.endswith(_ENDINGS)}
    if not truths:
        raise InputError(f"The ground-truth folder {gt_dir} holds no label maps (.nii.gz, .nrrd, ...).")
    predictions = {_case_id(p): p for p in sorted(pred_dir.iterdir()) if p.name.endswith(_ENDINGS)}
    missing = sorted(set(truths) - set(predictions))
    if missing:
        raise InputError(
            f"{len(missing)} case(s) have no prediction in {pred_dir} (e.g. '{missing[0]}'); name predictions like the labels."
        )
    cases = tuple(evaluate_pair(sitk.ReadImage(str(predictions[c])), sitk.ReadImage(str(truths[c])), c) for c in truths)
    dice = {name: _mean([c.dice[name] for c in cases if c.dice[name] is not None]) for name in CLASS_NAMES}
    available = [v for v in dice.values() if v is not None]
    absent = {name: [c.false_positive[name] for c in cases if c.dice[name] is None] for name in CLASS_NAMES}
    fp_rate: dict[str, float | None] = {name: _mean([float(v) for v in absent[name]]) for name in CLASS_NAMES}
    everything = [float(v) for values in absent.values() for v in values]
    fp_rate["all"] = _mean(everything)
    return EvaluationResult(
        cases=cases,
        dice=dice,
        mean_dice=_mean(available),
        fp_rate=fp_rate,
        fp_per_case=float(np.mean([sum(c.false_positive.values()) for c in cases])),
        cases_with_class={name: sum(c.dice[name] is not None for c in cases) for name in CLASS_NAMES},
    )


def format_table(result: EvaluationResult, title: str = "model") -> str:
    """BHSD Table 1 layout (Dice in %), plus FP columns and the number of cases per class."""

    def cell(value: float | None, scale: float = 100.0) -> str:
        return "-" if value is None else f"{scale * value:.2f}"

    header = ["", *CLASS_NAMES, "Mean", "FP rate", "FP/case"]
    row = [
        title,
        *(cell(result.dice[n]) for n in CLASS_NAMES),
        cell(result.mean_dice),
        cell(result.fp_rate["all"], 1.0),
    ]
    row.append(f"{result.fp_per_case:.2f}")
    counts = ["cases", *(str(result.cases_with_class[n]) for n in CLASS_NAMES), "", "", ""]
    widths = [max(len(r[i]) for r in (header, row, counts)) for i in range(len(header))]
    return "\n".join(
        "\t".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in (header, row, counts)
    )

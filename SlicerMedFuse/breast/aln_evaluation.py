"""Score an ALN-metastasis bundle on a dataset's held-out split: AUC, accuracy, sensitivity, specificity.

Every test case goes through :meth:`~SlicerMedFuse.breast.aln_inference.AlnClassifier.predict`, the
task's own path (crop, normalisation, missing-sequence handling); ``drop`` removes sequences from
every case to measure how the model copes without them (e.g. ``("t2w",)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from SlicerMedFuse.breast.aln_dataset import read_aln_dataset
from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.io import read_image

__all__ = ["AlnEvaluation", "evaluate_aln_bundle", "roc_auc"]


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (MONAI's ``compute_roc_auc``); NaN when only one class is present."""
    import torch
    from monai.metrics import compute_roc_auc

    y = np.asarray(labels, dtype=np.float32)
    if y.min() == y.max():
        return float("nan")
    return float(compute_roc_auc(torch.as_tensor(np.asarray(scores, np.float32)), torch.as_tensor(y)))


@dataclasses.dataclass(frozen=True)
class AlnEvaluation:
    """Per-case probabilities and labels of a test split, and the scores at ``threshold``."""

    case_ids: tuple[str, ...]
    probabilities: tuple[float, ...]
    labels: tuple[bool, ...]
    threshold: float

    def summary(self) -> dict[str, float]:
        p = np.asarray(self.probabilities)
        y = np.asarray(self.labels, dtype=bool)
        called = p >= self.threshold
        return {
            "cases": int(y.size),
            "positives": int(y.sum()),
            "auc": round(roc_auc(p, y), 4),
            "accuracy": round(float((called == y).mean()), 4),
            "sensitivity": round(float(called[y].mean()), 4) if y.any() else float("nan"),
            "specificity": round(float((~called[~y]).mean()), 4) if (~y).any() else float("nan"),
            "threshold": self.threshold,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "per_case": [
                {"case": c, "probability": round(p, 4), "aln": int(y)}
                for c, p, y in zip(self.case_ids, self.probabilities, self.labels, strict=True)
            ],
        }


def evaluate_aln_bundle(
    bundle: str | os.PathLike[str],
    data: str | Path,
    *,
    task_spec: TaskSpec,
    device: str = "cpu",
    drop: Sequence[str] = (),
    split: str = "test",
) -> AlnEvaluation | None:
    """Probabilities of ``bundle`` on a dataset split (None when the split is empty).

    Args:
        bundle: Bundle folder or id.
        task_spec: The ``aln-metastasis`` task's declaration, which the bundle must fit.
        data: ALN dataset folder.
        device: Torch device.
        drop: Sequence roles left out of every case.
        split: ``"test"`` (held out) or ``"train"``.
    """
    from SlicerMedFuse.breast.aln_inference import AlnClassifier

    dataset = read_aln_dataset(data)
    cases = dataset.test if split == "test" else dataset.training
    if not cases:
        return None
    classifier = AlnClassifier(bundle, task_spec=task_spec, device=device)
    probabilities = []
    for case in cases:
        images = {role: read_image(path) for role, path in case.images.items() if role not in drop}
        mass = read_image(case.mass) if case.mass is not None else None
        probabilities.append(classifier.predict(images, case.clinical, mass).probability)
    return AlnEvaluation(
        tuple(c.case_id for c in cases),
        tuple(probabilities),
        tuple(c.positive for c in cases),
        classifier.preprocessing.threshold,
    )

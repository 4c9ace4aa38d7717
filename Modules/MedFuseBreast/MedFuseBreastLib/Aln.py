"""Axillary lymph node (ALN) metastasis probability, the research task ``aln-metastasis``: request and result.

The task (the Transfer Module paper's multi-input classifier) reads the DCE / post-contrast T1
(role ``dce``, required), optionally the T2W (``t2w``) and a label map of the lesion to crop around
(``mass``), plus ten clinical values as float parameters (the backend's
:data:`SlicerMedFuse.breast.aln_clinical.CLINICAL_FIELDS`: names, ranges, checks); it writes no
image, only its report: ``report["aln"] = {"probability", "threshold", "positive", "intended_use",
"model"}``. :func:`alnParameters` checks the clinical values and :func:`alnResult` reads that
report; both are pure, so they are tested without the backend. A research model: the panel shows
its intended use beside every probability.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from SlicerMedFuse.facade import CLINICAL_FIELDS, MedFuseError, check_clinical

__all__ = [
    "ALN_TASK",
    "CLINICAL_FIELDS",
    "PANEL_DEFAULTS",
    "AlnResult",
    "alnParameters",
    "alnResult",
    "panelFieldName",
]

ALN_TASK = "aln-metastasis"
#: Input roles of the task: the DCE / post-contrast T1 (required), the T2W and the lesion label map.
ALN_DCE_ROLE, ALN_T2W_ROLE, ALN_MASS_ROLE = "dce", "t2w", "mass"
#: Where the panel's clinical values start (inside each field's range; the user enters the patient's).
PANEL_DEFAULTS: dict[str, float] = {
    "age": 50.0,
    "family_history": 0.0,
    "hormone_therapy": 0.0,
    "menopause": 0.0,
    "tumour_size_mm": 20.0,
    "er_percent": 0.0,
    "pgr_percent": 0.0,
    "ki67_percent": 0.0,
    "her2": 0.0,
    "grade": 2.0,
}


def panelFieldName(name: str) -> str:
    """The parameter node field of a clinical value: ``tumour_size_mm`` -> ``alnTumourSizeMm``."""
    return "aln" + "".join(part.capitalize() for part in name.split("_"))


def alnParameters(clinical: Mapping[str, Any]) -> dict[str, float]:
    """The task parameters from the clinical values (task parameter name -> value), checked by the backend's rules.

    Raises:
        ValueError: a value missing, not a number, out of range or not whole where it must be
            (one sentence naming the field and the allowed values).
    """
    try:
        return check_clinical(clinical, where="the ALN section")
    except MedFuseError as error:
        raise ValueError(error.message) from None


@dataclasses.dataclass(frozen=True)
class AlnResult:
    """What the ALN task reports.

    Attributes:
        probability: predicted probability of axillary lymph node metastasis (0..1).
        threshold: the operating point; ``positive`` is ``probability >= threshold``.
        positive: the model's call at that threshold.
        intendedUse: the model's intended use (shown with every result).
        model: the model that computed it.
    """

    probability: float
    threshold: float
    positive: bool
    intendedUse: str
    model: str

    def summary(self) -> str:
        """Two lines for the panel: the probability with the call, then the intended use."""
        side = "at or above" if self.positive else "below"
        return (
            f"ALN metastasis probability {self.probability:.0%} ({side} the threshold {self.threshold:.0%}; "
            f"model {self.model}).\nIntended use: {self.intendedUse}"
        )


def alnResult(report: Mapping[str, Any]) -> AlnResult:
    """The ALN result from a finished job's report (``report["aln"]``).

    Raises:
        ValueError: the report has no usable ``aln`` entry (one sentence).
    """
    entry = report.get("aln")
    if not isinstance(entry, Mapping):
        raise ValueError("The ALN job finished without an 'aln' entry in its report; update SlicerMedFuse.")
    try:
        probability, threshold = float(entry["probability"]), float(entry["threshold"])
        positive, intendedUse, model = bool(entry["positive"]), str(entry["intended_use"]), str(entry["model"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"The ALN job's report lacks a usable {error} entry; update SlicerMedFuse.") from None
    if not (0.0 <= probability <= 1.0 and 0.0 <= threshold <= 1.0):
        raise ValueError(f"The ALN job reported probability {probability} and threshold {threshold}, not within 0..1.")
    return AlnResult(probability, threshold, positive, intendedUse, model)

"""The ten clinical fields of the ALN-metastasis classifier: names, ranges, checks and normalisation.

The Transfer Module paper's clinical branch takes ten features (public code: "age, familiarity,
HT, menopause, dimensions, ER, PgR, ki67, HER2, grade"); here they are named for the user and
kept in that order everywhere (task parameters, dataset CSV, network input):

========================  =======================================  =========
field                     meaning                                  range
========================  =======================================  =========
``age``                   age at diagnosis (years)                 18..100
``family_history``        familiarity: breast cancer in the family 0 / 1
``hormone_therapy``       HT: hormone therapy                      0 / 1
``menopause``             post-menopausal                          0 / 1
``tumour_size_mm``        largest tumour diameter (mm)             1..200
``er_percent``            oestrogen-receptor positive nuclei (%)   0..100
``pgr_percent``           progesterone-receptor positive nuclei    0..100
``ki67_percent``          Ki-67 proliferation index (%)            0..100
``her2``                  HER2 positive                            0 / 1
``grade``                 histological grade                       1, 2, 3
========================  =======================================  =========

The paper does not say how it scales these inputs. Here every feature is z-scored with the mean
and standard deviation of the training set, stored in the bundle (:class:`ClinicalNormalization`),
binary ones included, so one rule covers all ten and a bundle carries its own statistics.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from SlicerMedFuse.errors import ModelError, UsageError

__all__ = ["CLINICAL_FIELDS", "ClinicalField", "ClinicalNormalization", "check_clinical", "clinical_array"]


@dataclasses.dataclass(frozen=True)
class ClinicalField:
    """One clinical input: its name, what it is, its unit and allowed values.

    Attributes:
        name: Parameter / CSV column name.
        title: What it is, for people.
        minimum: Smallest allowed value.
        maximum: Largest allowed value.
        unit: Unit shown to the user ("" for flags and grades).
        whole: Only whole numbers are allowed (flags and the grade).
    """

    name: str
    title: str
    minimum: float
    maximum: float
    unit: str = ""
    whole: bool = False

    @property
    def hint(self) -> str:
        """How to give it on the command line, e.g. ``age=YEARS``."""
        if self.whole:
            return f"{self.name}={'|'.join(str(v) for v in range(int(self.minimum), int(self.maximum) + 1))}"
        return f"{self.name}={self.unit.upper() or 'VALUE'}"


#: The paper's ten features, in the network's order.
CLINICAL_FIELDS: tuple[ClinicalField, ...] = (
    ClinicalField("age", "age at diagnosis", 18.0, 100.0, "years"),
    ClinicalField("family_history", "family history of breast cancer", 0.0, 1.0, whole=True),
    ClinicalField("hormone_therapy", "hormone therapy", 0.0, 1.0, whole=True),
    ClinicalField("menopause", "post-menopausal", 0.0, 1.0, whole=True),
    ClinicalField("tumour_size_mm", "largest tumour diameter", 1.0, 200.0, "mm"),
    ClinicalField("er_percent", "oestrogen-receptor positive nuclei", 0.0, 100.0, "percent"),
    ClinicalField("pgr_percent", "progesterone-receptor positive nuclei", 0.0, 100.0, "percent"),
    ClinicalField("ki67_percent", "Ki-67 proliferation index", 0.0, 100.0, "percent"),
    ClinicalField("her2", "HER2 positive", 0.0, 1.0, whole=True),
    ClinicalField("grade", "histological grade", 1.0, 3.0, whole=True),
)


def check_clinical(values: Mapping[str, Any], where: str = "") -> dict[str, float]:
    """The ten fields as floats, in order, after checking each is given, finite, in range and whole where needed.

    Args:
        values: Field name -> number (extra keys are ignored).
        where: Where the values come from, named in messages (e.g. ``"case 12 of cases.csv"``);
            empty for task parameters (the message then says how to give the field).

    Raises:
        UsageError: one sentence naming the field and the allowed values.
    """
    checked: dict[str, float] = {}
    for field in CLINICAL_FIELDS:
        value = values.get(field.name)
        origin = f" in {where}" if where else ""
        if value is None or (isinstance(value, str) and not value.strip()):
            fix = "" if where else f"; give it as --param {field.hint}"
            raise UsageError(f"The clinical field '{field.name}' ({field.title}) is missing{origin}{fix}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"The clinical field '{field.name}'{origin} needs a number; got {value!r}.") from None
        if not math.isfinite(number) or not field.minimum <= number <= field.maximum:
            unit = f" {field.unit}" if field.unit else ""
            raise UsageError(
                f"The clinical field '{field.name}'{origin} must be between {field.minimum:g} and "
                f"{field.maximum:g}{unit}; got {number:g}."
            )
        if field.whole and number != round(number):
            allowed = ", ".join(str(v) for v in range(int(field.minimum), int(field.maximum) + 1))
            raise UsageError(f"The clinical field '{field.name}'{origin} must be one of {allowed}; got {number:g}.")
        checked[field.name] = number
    return checked


def clinical_array(rows: Sequence[Mapping[str, float]]) -> np.ndarray:
    """``(N, 10)`` float32 in :data:`CLINICAL_FIELDS` order from checked rows."""
    return np.array([[row[field.name] for field in CLINICAL_FIELDS] for row in rows], dtype=np.float32).reshape(
        len(rows), len(CLINICAL_FIELDS)
    )


@dataclasses.dataclass(frozen=True)
class ClinicalNormalization:
    """Per-feature z-score with training-set statistics (stored in the bundle manifest).

    Attributes:
        fields: Feature names in network order (the ten of :data:`CLINICAL_FIELDS`, or none).
        mean: Training mean per feature.
        std: Training standard deviation per feature (a constant feature gets 1).
    """

    fields: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.fields and self.fields != tuple(field.name for field in CLINICAL_FIELDS):
            raise ModelError(
                f"The bundle's clinical features must be the ten of the ALN task in order "
                f"({', '.join(f.name for f in CLINICAL_FIELDS)}) or none; got {list(self.fields)}."
            )
        if not len(self.mean) == len(self.std) == len(self.fields) or min(self.std, default=1.0) <= 0:
            raise ModelError("The bundle's clinical normalisation needs one mean and one positive std per feature.")

    @classmethod
    def fit(cls, features: np.ndarray) -> ClinicalNormalization:
        """Statistics of an ``(N, 10)`` training matrix."""
        mean = features.mean(axis=0)
        std = features.std(axis=0)
        std = np.where(std > 1e-6, std, 1.0)
        return cls(
            tuple(field.name for field in CLINICAL_FIELDS),
            tuple(round(float(v), 6) for v in mean),
            tuple(round(float(v), 6) for v in std),
        )

    @classmethod
    def none(cls) -> ClinicalNormalization:
        """No clinical branch (an image-only network)."""
        return cls((), (), ())

    def apply(self, features: np.ndarray) -> np.ndarray:
        """z-scored ``(N, 10)`` float32 (``(N, 0)`` without a clinical branch)."""
        if not self.fields:
            return np.zeros((features.shape[0], 0), dtype=np.float32)
        return ((features - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": list(self.fields),
            "mean": list(self.mean),
            "std": list(self.std),
            "rule": "z-score per feature with training-set mean and std",
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClinicalNormalization:
        try:
            return cls(
                tuple(str(f) for f in data["fields"]),
                tuple(float(v) for v in data["mean"]),
                tuple(float(v) for v in data["std"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"The bundle's clinical normalisation is unusable ({error}).") from None

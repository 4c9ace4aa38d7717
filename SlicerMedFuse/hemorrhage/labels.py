"""The BHSD hemorrhage label set: values, names, colours and DICOM/SNOMED CT terminology.

Values follow the official BHSD ``dataset.json`` (nnU-Net layout): 0 background, 1 epidural,
2 intraparenchymal, 3 intraventricular, 4 subarachnoid, 5 subdural. The paper does not list them;
the dataset file does (see ``shared/seeds/NOTES-segmentation-and-fusion.md``, BHSD section).

Terminology (segment category / type / anatomic region, DICOM PS3.16 style, scheme ``SCT``):

* Category ``49755003`` "Morphologically Abnormal Structure" -- DICOM CID 7150 Segmentation
  Property Category (Slicer's older terminology files call it "Morphologically Altered Structure").
* Type, where a specific SNOMED CT concept could be confirmed from public value sets:
  ``274100004`` "Cerebral hemorrhage" (IPH) and ``21454007`` "Subarachnoid intracranial
  hemorrhage" (SAH), both listed with these ids in FHIR stroke-diagnosis value sets (e.g. the
  Stroke IG "StrokeDiagnosisVS"); ``35486000`` "Subdural intracranial hemorrhage" (SDH), from two
  independent public code tables. For EDH and IVH no source confirmed a specific concept id, so
  the type is the generic ``50960005`` "Hemorrhage" (DICOM CID 7159 Lesion Segmentation Type,
  included in CID 7194) and the anatomic region carries the location.
* Anatomic region, from DICOM CID 7153 CNS Segmentation Type: ``12738006`` Brain, ``35764002``
  Brain ventricle, ``35951006`` Subarachnoid space, ``18545000`` Dura mater, ``1231004`` Meninges.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from SlicerMedFuse.contract import CodedConcept, Label, Terminology

__all__ = [
    "BHSD_DATASET_NAMES",
    "CLASS_ABBREVIATIONS",
    "HEMORRHAGE_LABELS",
    "HemorrhageClass",
    "LABEL_BY_VALUE",
    "class_from_name",
]


class HemorrhageClass(enum.IntEnum):
    """BHSD label values (uint8 in label maps)."""

    BACKGROUND = 0
    EDH = 1  # epidural (extradural)
    IPH = 2  # intraparenchymal
    IVH = 3  # intraventricular
    SAH = 4  # subarachnoid
    SDH = 5  # subdural


CLASS_ABBREVIATIONS: tuple[str, ...] = tuple(c.name for c in HemorrhageClass if c)
"""``EDH IPH IVH SAH SDH``: the classes' short names in label order (BHSD Table 1's columns, report keys)."""

BHSD_DATASET_NAMES: Mapping[int, str] = {
    0: "background",
    1: "epidural",
    2: "intraparenchymal",
    3: "intraventricular",
    4: "subarachnoid",
    5: "subdural",
}
"""Label names exactly as in the BHSD ``dataset.json`` ``labels`` field."""

_CATEGORY = CodedConcept("SCT", "49755003", "Morphologically Abnormal Structure")
_HEMORRHAGE = CodedConcept("SCT", "50960005", "Hemorrhage")
_BRAIN = CodedConcept("SCT", "12738006", "Brain")
_VENTRICLE = CodedConcept("SCT", "35764002", "Brain ventricle")
_SUBARACHNOID_SPACE = CodedConcept("SCT", "35951006", "Subarachnoid space")
_DURA = CodedConcept("SCT", "18545000", "Dura mater")
_MENINGES = CodedConcept("SCT", "1231004", "Meninges")

HEMORRHAGE_LABELS: tuple[Label, ...] = (
    Label(
        value=int(HemorrhageClass.EDH),
        name="Epidural hemorrhage",
        color=(241, 214, 69),  # yellow
        terminology=Terminology(_CATEGORY, _HEMORRHAGE, region=_DURA),
        description="EDH: lentiform blood between the inner table of the skull and the dura.",
    ),
    Label(
        value=int(HemorrhageClass.IPH),
        name="Intraparenchymal hemorrhage",
        color=(216, 40, 40),  # red
        terminology=Terminology(_CATEGORY, CodedConcept("SCT", "274100004", "Cerebral hemorrhage"), region=_BRAIN),
        description="IPH: blood within the brain parenchyma.",
    ),
    Label(
        value=int(HemorrhageClass.IVH),
        name="Intraventricular hemorrhage",
        color=(50, 110, 230),  # blue
        terminology=Terminology(_CATEGORY, _HEMORRHAGE, region=_VENTRICLE),
        description="IVH: blood in the ventricular system, layering dependently.",
    ),
    Label(
        value=int(HemorrhageClass.SAH),
        name="Subarachnoid hemorrhage",
        color=(60, 190, 90),  # green
        terminology=Terminology(
            _CATEGORY,
            CodedConcept("SCT", "21454007", "Subarachnoid intracranial hemorrhage"),
            region=_SUBARACHNOID_SPACE,
        ),
        description="SAH: blood in the sulci and cisterns.",
    ),
    Label(
        value=int(HemorrhageClass.SDH),
        name="Subdural hemorrhage",
        color=(245, 140, 30),  # orange
        terminology=Terminology(
            _CATEGORY, CodedConcept("SCT", "35486000", "Subdural intracranial hemorrhage"), region=_MENINGES
        ),
        description="SDH: crescentic blood between the dura and the arachnoid along the convexity.",
    ),
)
"""The five BHSD foreground labels for the task contract (background 0 is implicit)."""

LABEL_BY_VALUE: Mapping[int, Label] = {label.value: label for label in HEMORRHAGE_LABELS}


def class_from_name(name: str | int | HemorrhageClass) -> HemorrhageClass:
    """``"EDH"``, ``"epidural"``, ``"Epidural hemorrhage"`` or ``1`` -> :class:`HemorrhageClass`.

    Raises:
        ValueError: For an unknown name or value (the message lists the valid ones).
    """
    if isinstance(name, HemorrhageClass):
        return name
    if isinstance(name, int):
        if name in BHSD_DATASET_NAMES:
            return HemorrhageClass(name)
    else:
        key = name.strip().lower()
        for cls in HemorrhageClass:
            label = LABEL_BY_VALUE.get(cls.value)
            if key in (cls.name.lower(), BHSD_DATASET_NAMES[cls.value], label.name.lower() if label else ""):
                return cls
    valid = ", ".join(c.name for c in HemorrhageClass if c) + " or " + ", ".join(BHSD_DATASET_NAMES.values())
    raise ValueError(f"unknown hemorrhage class {name!r}; use one of {valid}")

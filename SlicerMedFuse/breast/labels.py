"""The breast-mass label: value 1 "Mass", its colour and DICOM/SNOMED CT terminology.

The breast paper's label is binary (0 background, 1 mass). Terminology (DICOM PS3.16, scheme ``SCT``):
category ``49755003`` "Morphologically Abnormal Structure" (CID 7150, as for the hemorrhage
labels), type ``4147007`` "Mass" (CID 7159 Lesion Segmentation Type), anatomic region
``76752008`` "Breast" (DICOM anatomic codes).
"""

from __future__ import annotations

from SlicerMedFuse.contract import CodedConcept, Label, Terminology

__all__ = ["MASS_LABEL", "MASS_LABELS"]

MASS_LABEL = Label(
    value=1,
    name="Mass",
    color=(230, 80, 60),
    terminology=Terminology(
        category=CodedConcept("SCT", "49755003", "Morphologically Abnormal Structure"),
        type=CodedConcept("SCT", "4147007", "Mass"),
        region=CodedConcept("SCT", "76752008", "Breast"),
    ),
    description="Breast mass (lesion) segmented on the contrast-enhanced T1 (master sequence).",
)

#: The task's label set (one label).
MASS_LABELS = (MASS_LABEL,)

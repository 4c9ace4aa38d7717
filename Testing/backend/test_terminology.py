"""The Slicer terminology context generated from task labels."""

from __future__ import annotations

from SlicerMedFuse.contract import TERMINOLOGY_CONTEXT
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS
from SlicerMedFuse.terminology import terminology_context


def test_every_coded_label_is_selectable_in_its_category():
    context = terminology_context(HEMORRHAGE_LABELS)
    assert context["SegmentationCategoryTypeContextName"] == TERMINOLOGY_CONTEXT
    categories = context["SegmentationCodes"]["Category"]
    codes = {(c["CodeValue"], t["CodeValue"]) for c in categories for t in c["Type"]}
    for label in HEMORRHAGE_LABELS:
        entry = label.terminology.to_slicer_entry().split("~")
        assert entry[0] == TERMINOLOGY_CONTEXT
        category_code, type_code = entry[1].split("^")[1], entry[2].split("^")[1]
        assert (category_code, type_code) in codes
    types = [t["CodeValue"] for c in categories for t in c["Type"]]
    assert len(types) == len(set(types))  # a shared generic code is listed once
    assert all(c["showAnatomy"] for c in categories if any(lab.terminology.region for lab in HEMORRHAGE_LABELS))

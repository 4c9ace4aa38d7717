"""The BHSD label set as task-contract labels: values, names, colours, SNOMED CT terminology."""

from __future__ import annotations

import json

import pytest

from SlicerMedFuse.contract import InputSpec, OutputSpec, TaskSpec
from SlicerMedFuse.hemorrhage.labels import (
    BHSD_DATASET_NAMES,
    HEMORRHAGE_LABELS,
    LABEL_BY_VALUE,
    HemorrhageClass,
    class_from_name,
)


def test_values_and_names_follow_bhsd_dataset_json():
    assert [label.value for label in HEMORRHAGE_LABELS] == [1, 2, 3, 4, 5]
    assert [HemorrhageClass(label.value).name for label in HEMORRHAGE_LABELS] == ["EDH", "IPH", "IVH", "SAH", "SDH"]
    assert BHSD_DATASET_NAMES == {
        0: "background",
        1: "epidural",
        2: "intraparenchymal",
        3: "intraventricular",
        4: "subarachnoid",
        5: "subdural",
    }
    for label in HEMORRHAGE_LABELS:
        assert BHSD_DATASET_NAMES[label.value] in label.name.lower()


def test_colours_are_distinct_and_terminology_is_snomed():
    assert len({label.color for label in HEMORRHAGE_LABELS}) == 5
    for label in HEMORRHAGE_LABELS:
        term = label.terminology
        assert term is not None and term.region is not None
        assert (term.category.scheme, term.category.value) == ("SCT", "49755003")
        assert term.type.scheme == "SCT" and term.type.value.isdigit()
        assert term.region.scheme == "SCT" and term.region.value.isdigit()
    types = {HemorrhageClass(label.value).name: label.terminology.type.value for label in HEMORRHAGE_LABELS}
    assert types == {"EDH": "50960005", "IPH": "274100004", "IVH": "50960005", "SAH": "21454007", "SDH": "35486000"}
    entry = LABEL_BY_VALUE[4].terminology.to_slicer_entry()
    assert "SCT^21454007^Subarachnoid intracranial hemorrhage" in entry
    assert "SCT^35951006^Subarachnoid space" in entry


def test_labels_fit_a_task_contract():
    spec = TaskSpec(
        name="hemorrhage",
        title="Hemorrhage",
        summary="BHSD labels",
        inputs=(InputSpec("ct", "Head CT"),),
        outputs=(OutputSpec("segmentation", "Bleeds", kind="labelmap", primary=True),),
        labels=HEMORRHAGE_LABELS,
    )
    data = json.loads(json.dumps(spec.to_dict()))
    assert [item["value"] for item in data["labels"]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("EDH", 1), ("epidural", 1), ("Intraparenchymal hemorrhage", 2), (3, 3), ("sah", 4), (HemorrhageClass.SDH, 5)],
)
def test_class_names_resolve(name, expected):
    assert class_from_name(name) == expected


def test_unknown_class_lists_the_valid_ones():
    with pytest.raises(ValueError, match="EDH, IPH, IVH, SAH, SDH"):
        class_from_name("chronic")
    with pytest.raises(ValueError):
        class_from_name(9)

"""The structural manifest/catalog check used where jsonschema is missing agrees with the full schema on what it covers."""

from __future__ import annotations

import copy

import pytest

from SlicerMedFuse.models.manifest import schema_problem
from SlicerMedFuse.models.store import ModelStore
from SlicerMedFuse.models.structural_check import structural_problem


def _good_manifest() -> dict:
    return ModelStore().list_bundled()[0].manifest.to_dict()


def _broken(path: tuple, value: object) -> dict:
    data = copy.deepcopy(_good_manifest())
    *parents, last = path
    target = data
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


def test_sound_documents_pass_both_checks():
    assert structural_problem("bundle-manifest", _good_manifest()) is None
    assert schema_problem("bundle-manifest", _good_manifest()) is None


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("task",), 3, "task"),
        (("title",), KeyError, "title"),
        (("architecture", "args"), [], "architecture.args"),
        (("weights", "sha256"), KeyError, "weights.sha256"),
        (("training", "simulated"), "yes", "training.simulated"),
        (("inputs", 0, "role"), 1, "inputs[0].role"),
        (("labels",), [{"value": 0, "name": "x", "color": [1, 2, 3]}], "labels[0].value"),
        (("labels",), [{"value": 1, "name": "x", "color": [1, 2]}], "labels[0].color"),
    ],
)
def test_the_structural_check_names_the_field_the_schema_refuses(path, value, field):
    data = _broken(path, value)
    assert schema_problem("bundle-manifest", data) is not None  # the full schema refuses it too
    problem = structural_problem("bundle-manifest", data)
    assert problem is not None and f"field '{field}'" in problem


def test_catalog_entries_with_a_missing_or_unknown_field_are_refused():
    catalog = {"schema_version": 1, "models": [{"id": "x"}]}
    assert "field 'models[0].version' is missing" == structural_problem("catalog", catalog)
    entry = {
        "id": "x", "version": "1.0.0", "task": "t", "title": "T", "url": "https://e/x.zip", "sha256": "0" * 64,
        "size": 1, "license": "MIT", "intended_use": "demo", "simulated_training": True, "extra": 1,
    }  # fmt: skip
    assert structural_problem("catalog", {"models": [entry]}) == "field 'models[0].extra' is not allowed"
    assert schema_problem("catalog", {"schema_version": 1, "models": [entry]}) is not None

"""The task contract: parameters parse and validate with messages that name the fix."""

from __future__ import annotations

import pytest

from SlicerMedFuse.contract import (
    CodedConcept,
    InputSpec,
    Label,
    OutputSpec,
    ParameterSpec,
    TaskSpec,
    Terminology,
)
from SlicerMedFuse.errors import UsageError


def _spec(**overrides) -> TaskSpec:
    fields = dict(
        name="demo",
        title="Demo",
        summary="A task for tests.",
        inputs=(InputSpec("ct", "CT", modalities=("CT",)), InputSpec("mask", "Mask", kind="mask", required=False)),
        outputs=(OutputSpec("labels", "Labels", kind="labelmap", primary=True),),
        parameters=(
            ParameterSpec("sigma", "float", 1.0, minimum=0.0, maximum=5.0, unit="mm"),
            ParameterSpec("mode", "choice", "fast", choices=("fast", "accurate")),
            ParameterSpec("mirror", "bool", False),
            ParameterSpec("levels", "int", 3, minimum=1),
        ),
    )
    fields.update(overrides)
    return TaskSpec(**fields)


def test_parameters_parse_command_line_text():
    spec = _spec()
    values = spec.resolve_parameters({"sigma": "2.5", "mode": "accurate", "mirror": "yes", "levels": "4"})
    assert values == {"sigma": 2.5, "mode": "accurate", "mirror": True, "levels": 4}


def test_defaults_fill_unset_parameters():
    assert _spec().resolve_parameters({}) == {"sigma": 1.0, "mode": "fast", "mirror": False, "levels": 3}


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"sigma": "abc"}, "needs a float"),
        ({"sigma": 9.0}, "at most 5.0mm"),
        ({"levels": 0}, "at least 1"),
        ({"levels": 2.5}, "whole number"),
        ({"mode": "slow"}, "one of fast, accurate"),
        ({"mirror": "maybe"}, "needs a bool"),
        ({"nope": 1}, "no parameter 'nope'"),
    ],
)
def test_bad_parameters_name_the_parameter(given, fragment):
    with pytest.raises(UsageError, match=fragment):
        _spec().resolve_parameters(given)


def test_roles_are_checked():
    spec = _spec()
    spec.check_roles(["ct"])
    with pytest.raises(UsageError, match="needs input ct"):
        spec.check_roles(["mask"])
    with pytest.raises(UsageError, match="no input 'pet'"):
        spec.check_roles(["ct", "pet"])


def test_spec_rejects_duplicates_and_needs_one_primary_output():
    with pytest.raises(ValueError, match="input role twice"):
        _spec(inputs=(InputSpec("ct", "CT"), InputSpec("ct", "CT again")))
    with pytest.raises(ValueError, match="exactly one output"):
        _spec(outputs=(OutputSpec("a", "A"),))


def test_label_validation_and_terminology_entry():
    with pytest.raises(ValueError):
        Label(0, "background", (0, 0, 0))
    with pytest.raises(ValueError):
        Label(1, "bad colour", (0, 0, 300))
    term = Terminology(
        CodedConcept("SCT", "49755003", "Morphologically Altered Structure"),
        CodedConcept("SCT", "50960005", "Hemorrhage"),
    )
    entry = term.to_slicer_entry("Ctx")
    parts = entry.split("~")
    assert parts[0] == "Ctx"
    assert parts[1] == "SCT^49755003^Morphologically Altered Structure"
    assert parts[2] == "SCT^50960005^Hemorrhage"
    assert len(parts) == 7


def test_to_dict_is_json_ready():
    import json

    data = json.loads(json.dumps(_spec().to_dict()))
    assert data["parameters"][1]["choices"] == ["fast", "accurate"]

"""The torch-free task specs: one per built-in task, the same objects the tasks run with, readable choice names."""

from __future__ import annotations

import pytest

from SlicerMedFuse import specs
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.superres.slice_geometry import VolumeGrid
from SlicerMedFuse.tasks.registry import get_task, list_tasks
from Testing.backend.plugin_tasks import install_plugin

BUILTIN = ["superres", "hemorrhage", "registration", "breast-mass", "aln-metastasis"]


def test_names_are_the_registry_order_and_each_spec_is_the_one_its_task_runs_with():
    assert specs.task_names() == BUILTIN
    assert [task.spec.name for task in list_tasks()] == BUILTIN
    for name in BUILTIN:
        assert get_task(name).spec is specs.task_spec(name)


def test_an_unknown_task_is_one_sentence_listing_the_known_ones():
    with pytest.raises(UsageError, match="no task 'nope'.*hemorrhage"):
        specs.task_spec("nope")


@pytest.mark.parametrize("name", BUILTIN)
def test_every_choice_has_a_label_a_person_reads(name):
    for parameter in specs.task_spec(name).parameters:
        if parameter.kind == "choice":
            assert len(parameter.choice_labels) == len(parameter.choices), parameter.name
            assert all(label.strip() for label in parameter.choice_labels), parameter.name


def test_choice_labels_name_the_methods():
    method = specs.task_spec("superres").parameter("method")
    assert method.choice_label("sr4zct") == "SR4ZCT (self-supervised network)"
    assert method.choice_label("bspline") == "Cubic B-spline"
    registration = specs.task_spec("registration")
    assert registration.parameter("similarity").choice_label("lncc").startswith("Local normalised cross-correlation")
    assert "Curvature" in registration.parameter("regularizer").choice_label("implicit_curvature")


def test_model_backed_tasks_name_their_default_model():
    defaults = {name: specs.task_spec(name).default_model for name in BUILTIN}
    assert defaults == {
        "superres": None,
        "hemorrhage": "medfuse-hemorrhage-demo-multiwindow",
        "registration": None,
        "breast-mass": "medfuse-breast-mass-demo",
        "aln-metastasis": "medfuse-aln-metastasis-demo",
    }


def test_superres_grid_checks_run_on_the_grid_alone():
    params = specs.task_spec("superres").resolve_parameters({})
    specs.precheck_grids("superres", {"volume": VolumeGrid((128, 128, 20), (0.5, 0.5, 5.0))}, params)
    with pytest.raises(InputError, match="already isotropic"):
        specs.precheck_grids("superres", {"volume": VolumeGrid((64, 64, 64), (1.0, 1.0, 1.0))}, params)
    with pytest.raises(InputError, match="SR4ZCT needs slices of more than"):
        specs.precheck_grids("superres", {"volume": VolumeGrid((8, 8, 20), (0.5, 0.5, 5.0))}, params)
    specs.precheck_grids("hemorrhage", {"ct": VolumeGrid((8, 8, 20), (0.5, 0.5, 5.0))}, {})  # no grid checks


def test_plugin_specs_come_from_their_task_class_and_a_broken_one_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    assert specs.task_names()[: len(BUILTIN)] == BUILTIN and "site-masked" in specs.task_names()
    assert specs.task_spec("site-masked").name == "site-masked"
    names = [spec.name for spec in specs.all_specs()]
    assert "site-masked" in names and "site-broken" not in names

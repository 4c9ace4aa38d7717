"""The demo models shipped inside the package: every model-backed task's default resolves offline and verifies."""

from __future__ import annotations

import importlib

import pytest

from SlicerMedFuse.models.bundle import load_bundle
from SlicerMedFuse.models.store import ModelStore

#: Task module -> the task it defines; each declares the id of its default model as DEFAULT_MODEL.
MODEL_BACKED_TASKS = {
    "SlicerMedFuse.tasks.hemorrhage": "hemorrhage",
    "SlicerMedFuse.tasks.breast_mass": "breast-mass",
    "SlicerMedFuse.tasks.aln_metastasis": "aln-metastasis",
}


@pytest.mark.parametrize("module_name", sorted(MODEL_BACKED_TASKS))
def test_default_model_is_shipped_verified_and_says_it_is_simulated(module_name):
    default_id = importlib.import_module(module_name).DEFAULT_MODEL
    store = ModelStore()  # the isolated, empty MEDFUSE_HOME of the tests: only the shipped bundles back it
    shipped = {model.id: model for model in store.list_bundled()}
    assert default_id in shipped, f"{default_id} is not shipped in SlicerMedFuse/models/bundled"
    model = shipped[default_id]
    assert model.manifest.task == MODEL_BACKED_TASKS[module_name]
    assert model.manifest.simulated_training  # the panel and the CLI show the warning from this flag
    assert "simulated" in model.manifest.title.lower()
    assert store.verify(default_id).sha256  # sha256 of the weights matches the manifest
    assert store.resolve(default_id) == model.folder
    loaded = load_bundle(model.folder)
    assert loaded.manifest.id == default_id and sum(p.numel() for p in loaded.network.parameters()) > 0

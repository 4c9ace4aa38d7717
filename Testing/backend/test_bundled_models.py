"""The demo models shipped inside the package: every model-backed task's default resolves offline and verifies."""

from __future__ import annotations

import pytest

from SlicerMedFuse.models.bundle import load_bundle
from SlicerMedFuse.models.store import ModelStore
from SlicerMedFuse.specs import task_names, task_spec

#: Every built-in task that needs a model; each spec names its default bundle (``default_model``).
MODEL_BACKED_TASKS = [name for name in task_names() if task_spec(name).needs_model]


def test_every_model_backed_task_names_a_default():
    assert MODEL_BACKED_TASKS == ["hemorrhage", "breast-mass", "aln-metastasis"]
    assert all(task_spec(name).default_model for name in MODEL_BACKED_TASKS)


@pytest.mark.parametrize("task", MODEL_BACKED_TASKS)
def test_default_model_is_shipped_verified_and_says_it_is_simulated(task):
    default_id = task_spec(task).default_model
    store = ModelStore()  # the isolated, empty MEDFUSE_HOME of the tests: only the shipped bundles back it
    shipped = {model.id: model for model in store.list_bundled()}
    assert default_id in shipped, f"{default_id} is not shipped in SlicerMedFuse/models/bundled"
    model = shipped[default_id]
    assert model.manifest.task == task
    assert model.manifest.simulated_training  # the panel and the CLI show the warning from this flag
    assert "simulated" in model.manifest.title.lower()
    assert store.verify(default_id).sha256  # sha256 of the weights matches the manifest
    assert store.resolve(default_id) == model.folder
    loaded = load_bundle(model.folder)
    assert loaded.manifest.id == default_id and sum(p.numel() for p in loaded.network.parameters()) > 0

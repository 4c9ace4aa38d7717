"""The facade and every task spec work in a fresh Slicer: no torch, monai, jsonschema or safetensors (DESIGN rule 8).

Each check runs in a child Python whose import system refuses those packages
(:func:`Testing.fresh_slicer.run_in_fresh_slicer`), as a Slicer before the first-use install.
"""

from __future__ import annotations

import json

import pytest

from Testing.fresh_slicer import BLOCKED, run_in_fresh_slicer

SPEC_MODULES = ("superres", "hemorrhage", "registration", "breast_mass", "aln_metastasis")
BUNDLED_DEMOS = {
    "medfuse-hemorrhage-demo",
    "medfuse-hemorrhage-demo-multiwindow",
    "medfuse-breast-mass-demo",
    "medfuse-aln-metastasis-demo",
}


def _run_json(code: str) -> dict:
    """Run ``code`` (which prints one JSON object last) behind the blocker; the parsed object."""
    done = run_in_fresh_slicer(code)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _blocked_loaded() -> str:
    return f"sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})"


@pytest.mark.parametrize("module", SPEC_MODULES)
def test_each_spec_module_builds_its_spec(module):
    found = _run_json(
        f"""
        import json, sys
        from SlicerMedFuse.specs import {module} as spec_module
        spec = spec_module.SPEC
        print(json.dumps({{"name": spec.name, "dict": bool(spec.to_dict()), "blocked": {_blocked_loaded()}}}))
        """
    )
    assert found["dict"] and found["blocked"] == []
    assert found["name"].replace("-", "_") == module


def test_the_facade_lists_tasks_specs_defaults_and_checks_grids():
    found = _run_json(
        f"""
        import json, sys
        from SlicerMedFuse import facade
        missing = [name for name in facade.__all__ if not hasattr(facade, name)]
        names = facade.task_names()
        specs = {{name: facade.task_spec(name).to_dict()["name"] for name in names}}
        defaults = {{name: facade.default_model(name) for name in names}}
        params = facade.task_spec("superres").resolve_parameters({{}})
        facade.precheck_grids("superres", {{"volume": facade.VolumeGrid((128, 128, 20), (0.5, 0.5, 5.0))}}, params)
        try:
            facade.precheck_grids("superres", {{"volume": facade.VolumeGrid((64, 64, 64), (1.0, 1.0, 1.0))}}, params)
            refused = ""
        except facade.InputError as error:
            refused = str(error)
        label = facade.task_spec("superres").parameter("method").choice_label("sr4zct")
        print(json.dumps({{"missing": missing, "specs": specs, "defaults": defaults, "refused": refused,
                           "label": label, "blocked": {_blocked_loaded()}}}))
        """
    )
    assert found["missing"] == [] and found["blocked"] == []
    assert list(found["specs"]) == ["superres", "hemorrhage", "registration", "breast-mass", "aln-metastasis"]
    assert found["defaults"]["hemorrhage"] == "medfuse-hemorrhage-demo-multiwindow"
    assert found["defaults"]["superres"] is None
    assert "already isotropic" in found["refused"]
    assert found["label"] == "SR4ZCT (self-supervised network)"


def test_the_facade_lists_the_bundled_models_and_reads_their_manifests():
    found = _run_json(
        f"""
        import json, sys
        from SlicerMedFuse import facade
        store = facade.ModelStore()
        bundled = store.list_bundled()
        manifest = facade.load_manifest(bundled[0].folder)
        print(json.dumps({{"bundled": [m.id for m in bundled], "installed": [m.id for m in store.list_installed()],
                           "catalog": [e.id for e in store.catalog.entries], "task": manifest.task,
                           "blocked": {_blocked_loaded()}}}))
        """
    )
    assert BUNDLED_DEMOS <= set(found["bundled"]) and found["blocked"] == []
    assert found["installed"] == [] and isinstance(found["catalog"], list)


def test_without_jsonschema_a_broken_manifest_is_one_sentence_and_loading_needs_the_full_schema(tmp_path):
    bundle = tmp_path / "broken-0.1.0"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"id": "broken", "version": "0.1.0", "task": 3}))
    found = _run_json(
        f"""
        import json
        from SlicerMedFuse import facade
        from SlicerMedFuse.models.manifest import validate_manifest
        store = facade.ModelStore()
        good = store.list_bundled()[0].manifest.to_dict()
        try:
            facade.load_manifest({str(bundle)!r})
            broken = ""
        except facade.ModelError as error:
            broken = str(error)
        try:
            validate_manifest(good, "good", schema_required=True)
            strict = ""
        except facade.ModelError as error:
            strict = str(error)
        print(json.dumps({{"broken": broken, "strict": strict}}))
        """
    )
    assert "field 'task' is invalid" in found["broken"] and "get the bundle again" in found["broken"]
    assert "jsonschema is not installed" in found["strict"]

"""Model bundles end to end: save, pack, catalog, install, load, verify, remove, and every way they break."""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from jsonschema import Draft202012Validator

from SlicerMedFuse.contract import InputSpec, OutputSpec, TaskSpec
from SlicerMedFuse.errors import Cancelled, ModelError, UsageError
from SlicerMedFuse.models import (
    ModelStore,
    check_bundle_for_task,
    download,
    load_bundle,
    load_catalog,
    load_manifest,
    pack_bundle,
    save_bundle,
    sha256_file,
)
from SlicerMedFuse.models.manifest import load_schema, version_key
from SlicerMedFuse.nets import build_network, register_architecture, registry
from SlicerMedFuse.progress import EVENT_SCHEMA, JsonLinesProgress, Progress

UNET_ARGS: dict[str, Any] = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [4, 8],
    "strides": [2],
}


def make_manifest(**changes: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "id": "tiny-unet",
        "version": "1.0.0",
        "task": "toy-seg",
        "title": "Tiny UNet for tests",
        "description": "A randomly initialised network; it segments nothing.",
        "inputs": [{"role": "ct", "modality": "CT"}],
        "labels": [{"value": 1, "name": "lesion", "color": [220, 40, 40]}],
        "preprocessing": {"spacing": [1.0, 1.0, 1.0], "intensity": {"clip": [-100, 200]}},
        "architecture": {"name": "monai.UNet", "args": UNET_ARGS},
        "license": "Apache-2.0",
        "intended_use": "Software tests only.",
        "training": {"data": "none (random initialisation)", "simulated": True, "script": "test_models.py"},
        "authors": ["SlicerMedFuse tests"],
        "references": [],
    }
    manifest.update(changes)
    return manifest


@pytest.fixture(scope="module")
def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network("monai.UNet", UNET_ARGS).eval()


@pytest.fixture()
def bundle(tmp_path: Path, network: torch.nn.Module) -> Path:
    return save_bundle(network, make_manifest(), tmp_path / "bundles")


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MEDFUSE_HOME", str(home))
    monkeypatch.delenv("MEDFUSE_CATALOG", raising=False)
    return home


def publish(zip_path: Path, catalog_path: Path, monkeypatch: pytest.MonkeyPatch, sha256: str | None = None) -> None:
    """Write a catalog listing ``zip_path`` by file:// URL and point MEDFUSE_CATALOG at it."""
    entry = {
        "id": "tiny-unet",
        "version": "1.0.0",
        "task": "toy-seg",
        "title": "Tiny UNet",
        "url": zip_path.resolve().as_uri(),
        "sha256": sha256 or sha256_file(zip_path),
        "size": zip_path.stat().st_size,
        "license": "Apache-2.0",
        "intended_use": "Software tests only.",
        "simulated_training": True,
    }
    catalog_path.write_text(json.dumps({"schema_version": 1, "models": [entry]}))
    monkeypatch.setenv("MEDFUSE_CATALOG", str(catalog_path))


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# --- schemas and catalog -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bundle-manifest", "catalog"])
def test_schemas_are_valid_json_schemas(name: str) -> None:
    Draft202012Validator.check_schema(load_schema(name))


def test_packaged_catalog_is_valid_and_empty(env: Path) -> None:
    catalog = load_catalog()
    assert catalog.entries == ()
    with pytest.raises(ModelError, match="No model 'nope'.*none"):
        catalog.find("nope")


def test_version_order() -> None:
    versions = ["1.10.0", "1.9.0", "1.9.0-rc.1", "0.1.0", "1.9.0-rc.2"]
    assert sorted(versions, key=version_key) == ["0.1.0", "1.9.0-rc.1", "1.9.0-rc.2", "1.9.0", "1.10.0"]


def test_catalog_merge_latest_and_relative_url(tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {
        "id": "m",
        "task": "toy-seg",
        "title": "M",
        "sha256": "a" * 64,
        "size": 10,
        "license": "MIT",
        "intended_use": "tests",
        "simulated_training": False,
    }
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"schema_version": 1, "models": [dict(entry, version="1.9.0", url="m-1.9.0.zip")]}))
    second.write_text(
        json.dumps({"schema_version": 1, "models": [dict(entry, version="1.10.0", url="https://example.org/m.zip")]})
    )
    monkeypatch.setenv("MEDFUSE_CATALOG", os.pathsep.join([str(first), second.as_uri()]))
    catalog = load_catalog()
    assert catalog.find("m").version == "1.10.0"
    assert catalog.find("m", "1.9.0").url == (tmp_path / "m-1.9.0.zip").resolve().as_uri()
    with pytest.raises(ModelError, match="versions are 1.9.0, 1.10.0"):
        catalog.find("m", "2.0.0")


def test_invalid_catalog_names_field(tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"schema_version": 1, "models": [{"id": "m"}]}))
    monkeypatch.setenv("MEDFUSE_CATALOG", str(path))
    with pytest.raises(ModelError, match=r"field 'models\[0\]\.\w+' is missing"):
        load_catalog()
    monkeypatch.setenv("MEDFUSE_CATALOG", str(tmp_path / "missing.json"))
    with pytest.raises(ModelError, match="does not exist"):
        load_catalog()


# --- the happy path ----------------------------------------------------------------------------------


def test_install_load_verify_remove(
    tmp_path: Path, env: Path, bundle: Path, network: torch.nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bundle.name == "tiny-unet-1.0.0"
    assert sorted(p.name for p in bundle.iterdir()) == ["manifest.json", "model.safetensors"]
    zip_path = tmp_path / "dist" / "tiny-unet-1.0.0.zip"
    assert pack_bundle(bundle, zip_path) == sha256_file(zip_path)
    publish(zip_path, tmp_path / "catalog.json", monkeypatch)

    store = ModelStore()
    assert store.root == env and store.list_installed() == []
    stream = io.StringIO()
    installed = store.install("tiny-unet", progress=JsonLinesProgress(stream))
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    for event in events:
        Draft202012Validator(EVENT_SCHEMA).validate(event)
    assert events[-1]["fraction"] == 1.0 and any(e.get("stage") == "download" for e in events)
    assert installed.folder == env / "models" / "tiny-unet" / "1.0.0"
    assert [(m.id, m.version) for m in store.list_installed()] == [("tiny-unet", "1.0.0")]
    assert not (env / "tmp").exists()
    assert store.install("tiny-unet").folder == installed.folder  # already installed: kept

    loaded = load_bundle(store.resolve("tiny-unet"))
    assert loaded.manifest.labels[0].color == (220, 40, 40)
    assert loaded.manifest.preprocessing["spacing"] == [1.0, 1.0, 1.0]
    assert not loaded.network.training
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded.network(x), network(x))

    result = store.verify("tiny-unet")
    assert result.ok and result.sha256 == loaded.manifest.weights_sha256
    assert store.remove("tiny-unet") == [installed.folder]
    assert store.list_installed() == [] and tree(env / "models") == []


def test_check_bundle_for_task(bundle: Path) -> None:
    manifest = load_manifest(bundle)
    output = (OutputSpec("seg", "Segmentation", kind="labelmap", primary=True),)
    good = TaskSpec("toy-seg", "Toy", "", (InputSpec("ct", "CT", modalities=("CT",)),), output)
    check_bundle_for_task(manifest, good)
    with pytest.raises(ModelError, match="is for task 'toy-seg', not 'other'"):
        check_bundle_for_task(manifest, TaskSpec("other", "O", "", good.inputs, output))
    needs_mr = TaskSpec("toy-seg", "Toy", "", (*good.inputs, InputSpec("t1", "T1")), output)
    with pytest.raises(ModelError, match="t1"):
        check_bundle_for_task(manifest, needs_mr)
    mr_only = TaskSpec("toy-seg", "Toy", "", (InputSpec("ct", "CT", modalities=("MR",)),), output)
    with pytest.raises(ModelError, match="expects a CT image"):
        check_bundle_for_task(manifest, mr_only)


def test_save_bundle_refuses_overwrite_and_mismatched_model(tmp_path: Path, bundle: Path) -> None:
    other = build_network("monai.UNet", dict(UNET_ARGS, channels=[4, 16]))
    with pytest.raises(UsageError, match="already exists"):
        save_bundle(other, make_manifest(), bundle.parent)
    with pytest.raises(ModelError, match="does not fit the manifest's architecture 'monai.UNet'"):
        save_bundle(other, make_manifest(), bundle.parent, overwrite=True)
    assert tree(bundle.parent) == [
        "tiny-unet-1.0.0",
        "tiny-unet-1.0.0/manifest.json",
        "tiny-unet-1.0.0/model.safetensors",
    ]


class TiedPair(torch.nn.Module):
    """Two linear layers sharing one weight tensor (tied weights, as in some decoders)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.first = torch.nn.Linear(features, features)
        self.second = torch.nn.Linear(features, features)
        self.second.weight = self.first.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def test_save_bundle_handles_shared_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_architecture("tests.TiedPair", TiedPair)
    model = TiedPair(3)
    manifest = make_manifest(architecture={"name": "tests.TiedPair", "args": {"features": 3}})
    loaded = load_bundle(save_bundle(model, manifest, tmp_path)).network
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.second.weight is loaded.first.weight


# --- corruption and misuse ---------------------------------------------------------------------------


def test_corrupt_download_installs_nothing(
    tmp_path: Path, env: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = tmp_path / "tiny.zip"
    pack_bundle(bundle, zip_path)
    publish(zip_path, tmp_path / "catalog.json", monkeypatch, sha256="0" * 64)
    with pytest.raises(ModelError, match=r"sha256 mismatch.*the file was removed; try again or check the catalog"):
        ModelStore().install("tiny-unet")
    assert tree(env / "models") == [] and tree(env / "tmp") == []


def test_cancelled_download_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 100)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        download(
            source.as_uri(), tmp_path / "out" / "f.bin", expected_sha256=sha256_file(source), progress=Progress(cancel)
        )
    assert tree(tmp_path / "out") == []


def test_download_rejects_other_schemes_and_size(tmp_path: Path) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 100)
    with pytest.raises(ModelError, match="only https:// and file://"):
        download("http://example.org/f.bin", tmp_path / "out", expected_sha256=sha256_file(source))
    with pytest.raises(ModelError, match="100 bytes instead of 99"):
        download(source.as_uri(), tmp_path / "out", expected_sha256=sha256_file(source), expected_size=99)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_altered_weights_fail_verify_and_load(
    tmp_path: Path, env: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = tmp_path / "tiny.zip"
    pack_bundle(bundle, zip_path)
    installed = ModelStore().install_zip(zip_path)
    weights = installed.folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        ModelStore().verify("tiny-unet")
    with pytest.raises(ModelError, match="sha256"):
        load_bundle(installed.folder)


def test_manifest_missing_field_is_named(bundle: Path) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["intended_use"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="field 'intended_use' is missing"):
        load_manifest(bundle)
    data = make_manifest(labels=[{"value": 1, "name": "x", "color": [1, 2]}])
    with pytest.raises(ModelError, match=r"field 'labels\[0\]\.color'"):
        save_bundle(build_network("monai.UNet", UNET_ARGS), data, bundle.parent / "other")


def test_unknown_architecture(bundle: Path) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["architecture"]["name"] = "os.system"
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="unknown architecture.*'architecture.name'.*monai.UNet"):
        load_bundle(bundle)


def test_state_dict_mismatch(bundle: Path) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["architecture"]["args"]["channels"] = [4, 16]  # weights no longer fit
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="The bundle's weights do not fit its architecture 'monai.UNet'"):
        load_bundle(bundle)


def test_zip_with_parent_member_is_rejected(
    tmp_path: Path, env: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zip_path = tmp_path / "evil.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.write(bundle / "manifest.json", "tiny-unet-1.0.0/manifest.json")
        archive.write(bundle / "model.safetensors", "tiny-unet-1.0.0/model.safetensors")
        archive.writestr("../evil", "owned")
    publish(zip_path, tmp_path / "catalog.json", monkeypatch)
    with pytest.raises(ModelError, match="unsafe member '../evil'"):
        ModelStore().install("tiny-unet")
    assert tree(env / "models") == [] and tree(env / "tmp") == []
    assert not (env / "evil").exists() and not (env / "tmp" / ".." / "evil").exists()


def test_unknown_model_id(tmp_path: Path, env: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zip_path = tmp_path / "tiny.zip"
    pack_bundle(bundle, zip_path)
    publish(zip_path, tmp_path / "catalog.json", monkeypatch)
    store = ModelStore()
    with pytest.raises(ModelError, match="No model 'nope' in the catalog; known models: tiny-unet"):
        store.install("nope")
    with pytest.raises(ModelError, match=r"install it with 'medfuse models install nope' or drop the bundle folder"):
        store.resolve("nope")
    with pytest.raises(ModelError, match="is not installed"):
        store.remove("nope")


# --- offline drop-ins -------------------------------------------------------------------------------


def test_dropped_in_folder_is_found_offline(env: Path, bundle: Path, network: torch.nn.Module) -> None:
    dropped = env / "models" / "my-copy"
    dropped.parent.mkdir(parents=True)
    bundle.rename(dropped)
    (env / "models" / "not-a-bundle").mkdir()
    store = ModelStore()
    assert [(m.id, m.folder) for m in store.list_installed()] == [("tiny-unet", dropped)]
    assert store.resolve("tiny-unet@1.0.0") == dropped
    assert store.verify("tiny-unet").ok
    assert load_bundle(store.resolve("tiny-unet")).manifest.id == "tiny-unet"


def test_resolve_paths(tmp_path: Path, env: Path, bundle: Path) -> None:
    store = ModelStore()
    assert store.resolve(bundle) == bundle
    zip_path = tmp_path / "tiny.zip"
    pack_bundle(bundle, zip_path)
    assert store.resolve(str(zip_path)) == env / "models" / "tiny-unet" / "1.0.0"
    with pytest.raises(ModelError, match="No model bundle at"):
        store.resolve(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="zipped bundle"):
        load_bundle(zip_path)


def test_bundled_models_back_up_the_users_store_read_only(tmp_path: Path, env: Path, bundle: Path) -> None:
    import shutil

    shipped = tmp_path / "package-bundled"
    shutil.copytree(bundle, shipped / bundle.name)
    store = ModelStore(bundled_dir=shipped)
    assert store.list_installed() == [] and [(m.id, m.bundled) for m in store.list_bundled()] == [("tiny-unet", True)]
    assert store.resolve("tiny-unet@1.0.0") == shipped / bundle.name  # offline, nothing installed
    assert store.verify("tiny-unet").ok
    with pytest.raises(ModelError, match="bundled with SlicerMedFuse .read-only.; it cannot be removed"):
        store.remove("tiny-unet")
    assert ModelStore(env).list_bundled() == []  # a store opened on an explicit folder shows only that folder
    weights = shipped / bundle.name / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):  # verified before use like any bundle
        load_bundle(store.resolve("tiny-unet"))

"""``medfuse models`` as a subprocess: install from a catalog, verify, corrupt bundle -> exit 4."""

from __future__ import annotations

import json
import os

import torch

from SlicerMedFuse.errors import ExitCode
from SlicerMedFuse.models.bundle import pack_bundle, save_bundle
from SlicerMedFuse.nets.registry import build_network

from .test_cli import assert_one_sentence, medfuse
from .test_models import UNET_ARGS, make_manifest


def test_models_install_verify_corrupt_remove(tmp_path):
    torch.manual_seed(0)
    folder = save_bundle(build_network("monai.UNet", UNET_ARGS), make_manifest(), tmp_path / "bundles")
    archive = tmp_path / "tiny.zip"
    sha = pack_bundle(folder, archive)
    entry = {
        "id": "tiny-unet",
        "version": "1.0.0",
        "task": "superres",
        "title": "Tiny",
        "url": archive.as_uri(),
        "sha256": sha,
        "size": archive.stat().st_size,
        "license": "Apache-2.0",
        "intended_use": "tests",
        "simulated_training": True,
    }
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"schema_version": 1, "models": [entry]}))
    bad.write_text(json.dumps({"schema_version": 1, "models": [{**entry, "sha256": "0" * 64}]}))
    home = tmp_path / "home"
    env = {"MEDFUSE_HOME": str(home)}

    corrupt = medfuse("models", "install", "tiny-unet", env_extra={**env, "MEDFUSE_CATALOG": str(bad)})
    assert_one_sentence(corrupt, ExitCode.MODEL, "sha256")
    assert not any((home / "models").rglob("manifest.json")) if (home / "models").exists() else True

    env["MEDFUSE_CATALOG"] = str(good)
    assert medfuse("models", "install", "tiny-unet", env_extra=env).returncode == 0
    listing = json.loads(medfuse("models", "list", "--json", env_extra=env).stdout)
    assert [m["id"] for m in listing["installed"]] == ["tiny-unet"] and listing["installed"][0]["simulated_training"]
    assert "ok tiny-unet 1.0.0" in medfuse("models", "verify", "tiny-unet", env_extra=env).stdout

    weights = next((home / "models").rglob("model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert_one_sentence(medfuse("models", "verify", "tiny-unet", env_extra=env), ExitCode.MODEL, "sha256")

    assert medfuse("models", "remove", "tiny-unet", env_extra=env).returncode == 0
    assert not any((home / "models").rglob("manifest.json"))
    assert "installed: none" in medfuse("models", "list", env_extra={**env, "PATH": os.environ["PATH"]}).stdout

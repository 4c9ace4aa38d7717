"""Batch workers keep each model bundle loaded after its first use (and load it anew when it changes on disk)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import SlicerMedFuse
from SlicerMedFuse.models import bundle as bundle_module

BUNDLE = Path(SlicerMedFuse.__file__).parent / "models" / "bundled" / "medfuse-breast-mass-demo-0.1.0"


@pytest.fixture
def bundle_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(bundle_module, "_KEPT", None)  # restored afterwards: other tests load without keeping
    return Path(shutil.copytree(BUNDLE, tmp_path / BUNDLE.name))


def test_bundles_load_every_time_until_kept(bundle_copy):
    assert bundle_module.load_bundle(bundle_copy) is not bundle_module.load_bundle(bundle_copy)
    bundle_module.keep_loaded_bundles()
    first = bundle_module.load_bundle(bundle_copy)
    assert bundle_module.load_bundle(bundle_copy) is first
    assert bundle_module.load_bundle(bundle_copy, device="meta") is not first  # per device

    manifest = bundle_copy / "manifest.json"
    stat = manifest.stat()
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert bundle_module.load_bundle(bundle_copy) is not first  # changed on disk: loaded and verified anew

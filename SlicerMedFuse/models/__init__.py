"""Model bundles: format, catalog, per-user store and verified downloads (DESIGN rule 3).

A bundle is a folder ``<id>-<version>/`` with ``manifest.json`` and ``model.safetensors``;
weights are never unpickled and are checked against the manifest's sha256 before use.
Importing this package does not import torch.

Typical use::

    from SlicerMedFuse.models import ModelStore, load_bundle

    store = ModelStore()
    folder = store.resolve("hemorrhage-ct")      # an installed id, a bundle folder or a .zip
    bundle = load_bundle(folder, device="cuda")  # bundle.manifest, bundle.network
"""

from __future__ import annotations

from SlicerMedFuse.models.bundle import (
    LoadedBundle,
    check_bundle_for_task,
    load_bundle,
    load_manifest,
    pack_bundle,
    save_bundle,
    verify_weights,
)
from SlicerMedFuse.models.catalog import CATALOG_ENV, Catalog, CatalogEntry, load_catalog
from SlicerMedFuse.models.download import download, sha256_file
from SlicerMedFuse.models.manifest import BundleInput, BundleManifest, validate_manifest
from SlicerMedFuse.models.store import HOME_ENV, InstalledModel, ModelStore, VerifyResult, default_home

__all__ = [
    "CATALOG_ENV",
    "HOME_ENV",
    "BundleInput",
    "BundleManifest",
    "Catalog",
    "CatalogEntry",
    "InstalledModel",
    "LoadedBundle",
    "ModelStore",
    "VerifyResult",
    "check_bundle_for_task",
    "default_home",
    "download",
    "load_bundle",
    "load_catalog",
    "load_manifest",
    "pack_bundle",
    "sha256_file",
    "save_bundle",
    "validate_manifest",
    "verify_weights",
]

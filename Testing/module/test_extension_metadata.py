"""The extension's metadata states the Slicer 5.10 floor and names only files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The properties Slicer's extension catalog entry schema (v1.0.1, v1.0.2) allows; it has
#: "additionalProperties": false, so the Slicer floor cannot be written into SlicerMedFuse.json: it is
#: the Extensions Index branches (5.10 and later) the entry is submitted to.
CATALOG_PROPERTIES = {
    "$schema",
    "category",
    "scm_url",
    "scm_revision",
    "scm_type",
    "build_dependencies",
    "dicom_support_rule",
    "build_subdirectory",
    "enabled",
    "tier",
}


def test_catalog_entry_uses_only_schema_properties() -> None:
    entry = json.loads((REPO_ROOT / "SlicerMedFuse.json").read_text(encoding="utf-8"))
    assert set(entry) <= CATALOG_PROPERTIES and {"$schema", "category", "scm_url"} <= set(entry)
    assert entry["build_dependencies"] == ["PyTorch"]


def test_cmake_states_the_floor_and_lists_no_missing_screenshot() -> None:
    text = (REPO_ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    description = re.search(r'set\(EXTENSION_DESCRIPTION "([^"]*)"\)', text).group(1)
    assert "Slicer 5.10 or later" in description
    assert 'VERSION_LESS "5.10"' in text
    screenshots = re.search(r'set\(EXTENSION_SCREENSHOTURLS "([^"]*)"\)', text).group(1)
    for url in screenshots.split():
        relative = url.split("/main/", 1)[1]
        assert (REPO_ROOT / relative).is_file(), f"EXTENSION_SCREENSHOTURLS names a missing file: {relative}"
    icon = re.search(r'set\(EXTENSION_ICONURL "([^"]*)"\)', text).group(1)
    assert (REPO_ROOT / icon.split("/main/", 1)[1]).is_file()


def test_readme_names_the_floor_and_does_not_claim_the_extensions_manager() -> None:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Install into 3D Slicer (5.10 or later)" in text
    assert "not in the Extensions Index yet" in text
    assert "Install **SlicerMedFuse** from the Extensions Manager" not in text

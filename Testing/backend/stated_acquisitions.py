"""Test bundles that state the acquisitions they were trained on (manifest field ``training_acquisition``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from SlicerMedFuse.models.manifest import MANIFEST_FILE

#: Thin, untilted scans only: a thick tilted head CT lies outside.
THIN_UNTILTED = {"slice_thickness_mm": [0.6, 5.0], "tilt_deg": [0, 10], "inplane_mm": [0.4, 4.0]}


def copy_stating_acquisitions(bundle: Path, models_dir: Path, ranges: Mapping[str, list[float]]) -> Path:
    """Copy a bundle folder into ``models_dir`` with ``ranges`` as its manifest's ``training_acquisition``.

    Args:
        bundle: a bundle folder (manifest and weights; the weights' sha256 stays valid).
        models_dir: where the copy goes (a model store's ``models`` folder, or any folder).
        ranges: ``{"slice_thickness_mm": [low, high], ...}``.

    Returns:
        The copied bundle folder.
    """
    target = models_dir / f"{bundle.name}-stated"
    shutil.copytree(bundle, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["training_acquisition"] = dict(ranges)
    (target / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return target

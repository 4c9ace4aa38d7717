"""Bundles in the store that were refused (invalid or unsafe manifest), and who they claim to be.

A bundle whose manifest breaks the schema or names an architecture outside the allowlist is never
loaded. The store skips it when listing; but a user who asked for that model (or whose newest
version it is) must learn that another version ran instead, and why. :func:`refused_bundles`
reads the id and version such a folder claims, from its raw ``manifest.json`` when it is JSON
and otherwise from the store layout ``models/<id>/<version>/``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import MANIFEST_FILE

__all__ = ["RefusedBundle", "refused_bundles"]


@dataclasses.dataclass(frozen=True)
class RefusedBundle:
    """A bundle folder that cannot be used.

    Attributes:
        folder: the bundle folder.
        id: the model id it claims.
        version: the version it claims.
        reason: the one-sentence reason it was refused.
    """

    folder: Path
    id: str
    version: str
    reason: str

    @property
    def name(self) -> str:
        """``id@version`` as a user types it."""
        return f"{self.id}@{self.version}"


def _claimed_identity(folder: Path) -> tuple[str, str]:
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("id"), str) and isinstance(data.get("version"), str):
        return data["id"], data["version"]
    return folder.parent.name, folder.name  # the store layout models/<id>/<version>/


def refused_bundles(folders: Iterable[Path]) -> list[RefusedBundle]:
    """The folders among ``folders`` whose manifest is refused, with the identity each claims.

    Args:
        folders: bundle folders (each holding a ``manifest.json``).

    Returns:
        One :class:`RefusedBundle` per refused folder, in the order given.
    """
    refused = []
    for folder in folders:
        try:
            load_manifest(folder)
        except ModelError as error:
            refused.append(RefusedBundle(folder, *_claimed_identity(folder), error.message))
    return refused

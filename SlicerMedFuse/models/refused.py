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
import logging
from collections.abc import Iterable
from pathlib import Path

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import MANIFEST_FILE, version_key

__all__ = ["RefusedBundle", "explain_refused", "refused_bundles"]

_log = logging.getLogger(__name__)


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


def refused_bundles(folders: Iterable[Path], model_id: str, version: str | None = None) -> list[RefusedBundle]:
    """The folders among ``folders`` whose manifest is refused and that claim to be ``model_id``.

    Args:
        folders: bundle folders (each holding a ``manifest.json``).
        model_id: the model id asked for.
        version: the version asked for; None for any.

    Returns:
        One :class:`RefusedBundle` per refused folder claiming that id (and version), in the order given.
    """
    refused = []
    for folder in folders:
        try:
            load_manifest(folder)
        except ModelError as error:
            claimed = RefusedBundle(folder, *_claimed_identity(folder), error.message)
            if claimed.id == model_id and version in (None, claimed.version):
                refused.append(claimed)
    return refused


def explain_refused(refused: Iterable[RefusedBundle], chosen_version: str | None, *, asked: str | None) -> None:
    """Make a refusal visible: an error when the version asked for is refused, else a warning per
    refused version newer than the one that runs (logged, so it reaches stderr and the job report).

    Args:
        refused: the refused bundles of the model id asked for.
        chosen_version: the usable version that will run; None when there is none.
        asked: the version the user asked for explicitly (``id@version``); None for the latest.

    Raises:
        ModelError: ``asked`` is given, no usable bundle has it, and a refused one does.
    """
    refused = list(refused)
    if refused and chosen_version is None and asked is not None:
        first = refused[0]
        raise ModelError(f"Model '{first.name}' in {first.folder} cannot be used: {first.reason}")
    if chosen_version is None:
        return
    for skipped in refused:
        if version_key(skipped.version) > version_key(chosen_version):
            _log.warning(
                "Model '%s' was refused (%s); version %s of %s runs instead.",
                skipped.name,
                skipped.reason.rstrip("."),
                chosen_version,
                skipped.id,
            )

"""The model catalog: which bundles can be downloaded, from where, with which sha256.

A catalog is a JSON file (schema: ``schemas/catalog.schema.json``). The packaged one,
``SlicerMedFuse/models/catalog.json``, lists the models the project publishes. A user or site adds
catalogs with the environment variable ``MEDFUSE_CATALOG``: a list of paths or ``file://`` URLs
separated by :data:`os.pathsep`, read after the packaged one; an entry with the same id and
version as an earlier one replaces it. An entry's ``url`` may be relative to its catalog file,
so a site can keep its catalog and zips together on a shared drive.
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.request
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.models.download import ALLOWED_SCHEMES
from SlicerMedFuse.models.manifest import schema_problem, version_key

__all__ = ["CATALOG_ENV", "Catalog", "CatalogEntry", "load_catalog", "read_catalog"]

#: Environment variable naming extra catalogs (os.pathsep-separated paths or file:// URLs).
CATALOG_ENV = "MEDFUSE_CATALOG"

_PACKAGED = "packaged catalog"


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """One downloadable bundle.

    Attributes:
        id: model identifier.
        version: semantic version.
        task: name of the task the model serves.
        title: human-readable name.
        url: absolute ``https://`` or ``file://`` URL of the bundle's zip.
        sha256: sha256 of the zip.
        size: size of the zip in bytes.
        license: licence of the weights.
        intended_use: what the model may be used for.
        simulated_training: whether it was trained on simulated data.
        source: the catalog the entry came from.
    """

    id: str
    version: str
    task: str
    title: str
    url: str
    sha256: str
    size: int
    license: str
    intended_use: str
    simulated_training: bool
    source: str = ""

    @property
    def name(self) -> str:
        """``id-version``."""
        return f"{self.id}-{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``medfuse models list --json``)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Catalog:
    """The merged catalogs.

    Attributes:
        entries: every entry, sorted by id then version (oldest first).
        sources: the catalogs read, in order.
    """

    entries: tuple[CatalogEntry, ...] = ()
    sources: tuple[str, ...] = ()

    def ids(self) -> list[str]:
        """The model ids, sorted."""
        return sorted({entry.id for entry in self.entries})

    def versions(self, model_id: str) -> list[str]:
        """The versions of ``model_id``, oldest first."""
        return [entry.version for entry in self.entries if entry.id == model_id]

    def find(self, model_id: str, version: str | None = None) -> CatalogEntry:
        """The entry for ``model_id`` at ``version``, or its latest version when ``version`` is None.

        Raises:
            ModelError: the id or version is not in the catalog (the message lists what is).
        """
        matches = [entry for entry in self.entries if entry.id == model_id]
        if not matches:
            known = ", ".join(self.ids()) or "none (no catalog lists a model yet)"
            raise ModelError(
                f"No model '{model_id}' in the catalog; known models: {known}. "
                f"Add a catalog with {CATALOG_ENV} or drop the bundle folder into the model store."
            )
        if version is None:
            return max(matches, key=lambda entry: version_key(entry.version))
        for entry in matches:
            if entry.version == version:
                return entry
        raise ModelError(
            f"Model '{model_id}' has no version {version} in the catalog; "
            f"its versions are {', '.join(e.version for e in matches)}."
        )


def _location_to_path(location: str) -> Path:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # one letter: a Windows drive, i.e. a path
        raise ModelError(
            f"Catalog {location} cannot be read: {CATALOG_ENV} takes file paths or file:// URLs; "
            "download the catalog and give its path."
        )
    return Path(location).expanduser()


def _absolute_url(url: str, catalog: Path | None, source: str) -> str:
    scheme = urlparse(url).scheme.lower()
    if len(scheme) <= 1:  # relative path (or a Windows drive path)
        if catalog is None and not Path(url).is_absolute():
            raise ModelError(f"The {source} has a relative URL {url!r}, which only a catalog file may have.")
        path = Path(url) if Path(url).is_absolute() else catalog.parent / url  # type: ignore[union-attr]
        return path.resolve().as_uri()
    if scheme not in ALLOWED_SCHEMES:
        raise ModelError(
            f"The catalog {source} lists {url}: only {' and '.join(s + '://' for s in ALLOWED_SCHEMES)} "
            "URLs are allowed; fix the catalog."
        )
    return url


def read_catalog(data: Any, source: str, path: Path | None = None) -> list[CatalogEntry]:
    """Validate one parsed catalog and return its entries.

    Args:
        data: the parsed JSON.
        source: a name for messages (its path).
        path: the catalog file, against which relative URLs are resolved.

    Raises:
        ModelError: naming the bad field.
    """
    problem = schema_problem("catalog", data)
    if problem is not None:
        raise ModelError(f"The catalog {source} is invalid: {problem}; fix the catalog.")
    entries = []
    for item in data["models"]:
        fields = dict(item, url=_absolute_url(item["url"], path, source), source=source)
        entries.append(CatalogEntry(**fields))
    return entries


def _read_file(path: Path, source: str) -> list[CatalogEntry]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"The catalog {source} does not exist; fix {CATALOG_ENV} or create the file.") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"The catalog {source} cannot be read ({exc}); fix the file.") from exc
    return read_catalog(data, source, path)


def _packaged_entries() -> list[CatalogEntry]:
    text = resources.files("SlicerMedFuse.models").joinpath("catalog.json").read_text("utf-8")
    return read_catalog(json.loads(text), _PACKAGED)


def _merge(groups: Iterable[list[CatalogEntry]]) -> tuple[CatalogEntry, ...]:
    merged: dict[tuple[str, str], CatalogEntry] = {}
    for entries in groups:
        for entry in entries:
            merged[(entry.id, entry.version)] = entry  # a later catalog overrides an earlier one
    return tuple(sorted(merged.values(), key=lambda e: (e.id, version_key(e.version))))


def _split_locations(value: str) -> list[str]:
    """Split ``MEDFUSE_CATALOG`` on :data:`os.pathsep`, keeping ``file://`` URLs whole where it is ':'."""
    parts = value.split(os.pathsep)
    locations: list[str] = []
    for part in parts:
        if locations and locations[-1].isalpha() and len(locations[-1]) > 1 and part.startswith("//"):
            locations[-1] += os.pathsep + part  # 'file' + '///path' was one URL
        else:
            locations.append(part)
    return [location.strip() for location in locations if location.strip()]


def load_catalog(extra: Sequence[str | os.PathLike[str]] = ()) -> Catalog:
    """The packaged catalog merged with those named by ``MEDFUSE_CATALOG`` and then ``extra``.

    Args:
        extra: more catalog paths or ``file://`` URLs, read last.

    Raises:
        ModelError: a catalog is missing, unreadable or invalid (the message names it).
    """
    locations = _split_locations(os.environ.get(CATALOG_ENV, ""))
    locations += [os.fspath(item) for item in extra]
    groups = [_packaged_entries()]
    sources = [_PACKAGED]
    for location in locations:
        path = _location_to_path(location)
        groups.append(_read_file(path, str(path)))
        sources.append(str(path))
    return Catalog(_merge(groups), tuple(sources))

"""The per-user model store: installed bundles, one folder per model version (DESIGN rule 3).

Layout under the store root (``$MEDFUSE_HOME``, default ``~/.medfuse``)::

    models/<id>/<version>/manifest.json, model.safetensors   installed from a catalog or a zip
    models/<anything>/manifest.json                          a bundle folder dropped in by hand
    tmp/                                                      downloads and extractions in progress

Installing downloads the zip (its sha256 is checked before it is opened), extracts it safely
into ``tmp/``, checks the weights against the manifest and renames the bundle into place, so a
model folder is either complete and verified or absent. Everything works offline for bundles
already in the store or dropped into it.

Bundles shipped inside the package (``SlicerMedFuse/models/bundled/<id>-<version>/``, e.g. the
hemorrhage demo model) back up the user's store (the default root): :meth:`ModelStore.find_installed`
and :meth:`ModelStore.resolve` fall back to them for an id the store lacks, so a task's default
model works offline without an install; :meth:`ModelStore.list_bundled` lists them (apart from
the installed ones). They are read-only (never removed) and their weights are sha256-checked
against their manifest before use like every bundle's.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from SlicerMedFuse.errors import ModelError, ResourceError
from SlicerMedFuse.models.bundle import check_weights_fit, load_manifest, verify_weights
from SlicerMedFuse.models.catalog import Catalog, CatalogEntry, load_catalog
from SlicerMedFuse.models.download import download
from SlicerMedFuse.models.manifest import MANIFEST_FILE, BundleManifest, version_key
from SlicerMedFuse.models.refused import explain_refused, refused_bundles
from SlicerMedFuse.progress import Progress

__all__ = ["BUNDLED_DIR", "HOME_ENV", "InstalledModel", "ModelStore", "VerifyResult", "default_home"]

#: Environment variable overriding the store root.
HOME_ENV = "MEDFUSE_HOME"

#: Bundles shipped with the package (read-only).
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"

_MAX_COMPRESSION_RATIO = 100  # bundles are mostly float weights; far higher ratios mean a zip bomb
_log = logging.getLogger(__name__)


def default_home() -> Path:
    """The store root: ``$MEDFUSE_HOME`` or ``~/.medfuse``."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".medfuse"


@dataclasses.dataclass(frozen=True)
class InstalledModel:
    """A bundle in the store.

    Attributes:
        id: model identifier.
        version: model version.
        folder: the bundle folder.
        manifest: its manifest.
        bundled: shipped with the package (read-only), not installed in the store.
    """

    id: str
    version: str
    folder: Path
    manifest: BundleManifest
    bundled: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (``medfuse models list --json``)."""
        m = self.manifest
        return {
            "id": self.id,
            "version": self.version,
            "task": m.task,
            "title": m.title,
            "folder": str(self.folder),
            "license": m.license,
            "intended_use": m.intended_use,
            "simulated_training": m.simulated_training,
            "bundled": self.bundled,
        }


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """The outcome of :meth:`ModelStore.verify` (a failed check raises instead)."""

    id: str
    version: str
    folder: Path
    sha256: str
    ok: bool = True


def _check_member(info: zipfile.ZipInfo, archive_name: str) -> None:
    name = info.filename
    parts = PurePosixPath(name).parts
    unsafe = (
        name.startswith(("/", "\\"))
        or "\\" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in parts
        or stat.S_ISLNK(info.external_attr >> 16)
    )
    if unsafe:
        raise ModelError(
            f"The model archive {archive_name} has an unsafe member {name!r} (absolute path, '..' or link); "
            "it was not installed; get the bundle from a trusted source."
        )


def _safe_extract(zip_path: Path, dest: Path) -> None:
    """Extract ``zip_path`` into ``dest`` after rejecting unsafe members, zip bombs and full disks."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = archive.infolist()
            for info in members:
                _check_member(info, zip_path.name)
            total = sum(info.file_size for info in members)
            if total > _MAX_COMPRESSION_RATIO * max(zip_path.stat().st_size, 1 << 20):
                raise ModelError(f"The model archive {zip_path.name} unpacks to {total} bytes, far more than a bundle.")
            free = shutil.disk_usage(dest).free
            if total > free:
                raise ResourceError(
                    f"Installing {zip_path.name} needs {total / 2**20:.0f} MiB but {dest} has "
                    f"{free / 2**20:.0f} MiB free; free some space and try again."
                )
            for info in members:
                archive.extract(info, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise ModelError(f"{zip_path.name} is not a readable zip archive ({exc}); get the bundle again.") from exc


def _find_bundle_root(folder: Path, archive_name: str) -> Path:
    if (folder / MANIFEST_FILE).is_file():
        return folder
    candidates = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST_FILE).is_file()]
    if len(candidates) != 1:
        raise ModelError(
            f"The archive {archive_name} does not hold one model bundle (a folder with {MANIFEST_FILE}); "
            "get the bundle again."
        )
    return candidates[0]


class ModelStore:
    """The per-user store of installed bundles.

    Args:
        root: store root; default :func:`default_home` (``$MEDFUSE_HOME`` or ``~/.medfuse``).
        catalog: the catalog used to install by id; default :func:`load_catalog`, read on first use.
        bundled_dir: folder of read-only bundles offered after the store's own; default: the
            package's :data:`BUNDLED_DIR` for the user's store (``root`` None), none for a store
            opened on an explicit folder (which then shows only that folder).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        catalog: Catalog | None = None,
        bundled_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.bundled_dir = Path(bundled_dir) if bundled_dir is not None else (BUNDLED_DIR if root is None else None)
        self.root = Path(root).expanduser() if root is not None else default_home()
        self._catalog = catalog

    @property
    def models_dir(self) -> Path:
        """Where bundles live: ``<root>/models``."""
        return self.root / "models"

    @property
    def catalog(self) -> Catalog:
        """The catalog (loaded on first use)."""
        if self._catalog is None:
            self._catalog = load_catalog()
        return self._catalog

    def folder_for(self, model_id: str, version: str) -> Path:
        """The folder an installed bundle gets: ``<root>/models/<id>/<version>``."""
        return self.models_dir / model_id / version

    # --- listing -----------------------------------------------------------------------------------

    def _candidate_folders(self) -> list[Path]:
        if not self.models_dir.is_dir():
            return []
        found = []
        for child in sorted(self.models_dir.iterdir()):
            if child.name.startswith(".") or not child.is_dir():
                continue
            if (child / MANIFEST_FILE).is_file():
                found.append(child)  # a bundle folder dropped in by hand
                continue
            found += [
                grandchild
                for grandchild in sorted(child.iterdir())
                if not grandchild.name.startswith(".") and (grandchild / MANIFEST_FILE).is_file()
            ]
        return found

    def _bundled_folders(self) -> list[Path]:
        if self.bundled_dir is None or not self.bundled_dir.is_dir():
            return []
        return [f for f in sorted(self.bundled_dir.iterdir()) if f.is_dir() and (f / MANIFEST_FILE).is_file()]

    def list_installed(self) -> list[InstalledModel]:
        """Every bundle in the store, sorted by id then version; invalid folders are skipped with a warning.

        Weights are not hashed here (see :meth:`verify`).
        """
        models: dict[tuple[str, str], InstalledModel] = {}
        for folder in self._candidate_folders():
            try:
                manifest = load_manifest(folder)
            except ModelError as exc:
                _log.warning("skipping %s: %s", folder, exc.message)
                continue
            key = (manifest.id, manifest.version)
            canonical = folder == self.folder_for(*key)
            if key not in models or canonical:
                models[key] = InstalledModel(manifest.id, manifest.version, folder, manifest)
        return sorted(models.values(), key=lambda m: (m.id, version_key(m.version)))

    def list_bundled(self) -> list[InstalledModel]:
        """The read-only bundles shipped with the package (``bundled`` True), sorted by id then version."""
        models = []
        for folder in self._bundled_folders():
            try:
                manifest = load_manifest(folder)
            except ModelError as exc:
                _log.warning("skipping bundled %s: %s", folder, exc.message)
                continue
            models.append(InstalledModel(manifest.id, manifest.version, folder, manifest, bundled=True))
        return sorted(models, key=lambda m: (m.id, version_key(m.version)))

    def find_installed(self, model_id: str, version: str | None = None) -> InstalledModel:
        """The installed bundle ``model_id`` at ``version`` (latest installed when None), else a bundled one.

        A newer version of ``model_id`` that is refused (invalid or unsafe manifest) is named in a
        warning saying which version runs instead.

        Raises:
            ModelError: it is neither installed nor bundled (the message says how to install it), or
                the ``version`` asked for is refused (the message says why).
        """
        matches = [m for m in self.list_installed() if m.id == model_id and version in (None, m.version)]
        if not matches:
            matches = [m for m in self.list_bundled() if m.id == model_id and version in (None, m.version)]
        refused = refused_bundles(self._candidate_folders() + self._bundled_folders(), model_id, version)
        explain_refused(refused, matches[-1].version if matches else None, asked=version)
        if not matches:
            what = model_id if version is None else f"{model_id} version {version}"
            raise ModelError(
                f"Model '{what}' is not installed; install it with 'medfuse models install {model_id}' "
                f"or drop the bundle folder into {self.models_dir}."
            )
        return matches[-1]

    # --- installing --------------------------------------------------------------------------------

    def _temp_dir(self) -> Path:
        temp = self.root / "tmp"
        temp.mkdir(parents=True, exist_ok=True)
        return temp

    def _cleanup_temp_dir(self) -> None:
        try:
            (self.root / "tmp").rmdir()  # only when empty: another install may be running
        except OSError:
            pass

    def install(
        self,
        entry_or_id: CatalogEntry | str,
        *,
        version: str | None = None,
        progress: Progress | None = None,
        force: bool = False,
    ) -> InstalledModel:
        """Download, verify and install a catalog model.

        An installed copy whose weights pass the sha256 check is kept unless ``force`` is set; a
        corrupt installed copy is replaced.

        Args:
            entry_or_id: a catalog entry, or a model id looked up in :attr:`catalog`.
            version: the version to install when an id is given (default: the latest).
            progress: receives download and installation progress.
            force: download and install again even if the model is installed.

        Raises:
            ModelError: unknown model, download failure, sha256 mismatch or invalid bundle.
            ResourceError: the disk is full.
        """
        progress = progress if progress is not None else Progress()
        entry = entry_or_id if isinstance(entry_or_id, CatalogEntry) else self.catalog.find(entry_or_id, version)
        target = self.folder_for(entry.id, entry.version)
        if (target / MANIFEST_FILE).is_file() and not force:
            try:
                manifest = load_manifest(target)
                verify_weights(manifest)
                progress.log(f"{entry.name} is already installed in {target}")
                return InstalledModel(entry.id, entry.version, target, manifest)
            except ModelError as exc:
                progress.log(f"reinstalling {entry.name}: {exc.message}", level="warning")
        temp = self._temp_dir()
        zip_path = temp / f"{entry.name}.{os.getpid()}.zip"
        try:
            download(
                entry.url,
                zip_path,
                expected_sha256=entry.sha256,
                expected_size=entry.size,
                progress=progress.span(0.0, 0.9),
            )
            installed = self._install_verified_zip(zip_path, entry=entry, replace=True)
        finally:
            zip_path.unlink(missing_ok=True)
            self._cleanup_temp_dir()
        progress.update(1.0, "install", f"installed {entry.name}")
        return installed

    def install_zip(self, zip_path: str | os.PathLike[str], *, force: bool = False) -> InstalledModel:
        """Install a bundle zip from disk (offline). Its weights are checked against its manifest.

        Args:
            zip_path: the ``.zip`` of a bundle folder.
            force: replace an installed bundle of the same id and version even if it differs.

        Raises:
            ModelError: the zip is unsafe or not a valid bundle, or a different bundle with the same
                id and version is installed and ``force`` is false.
        """
        path = Path(zip_path)
        if not path.is_file():
            raise ModelError(f"The model archive {path} does not exist; check the path.")
        try:
            return self._install_verified_zip(path, entry=None, replace=force)
        finally:
            self._cleanup_temp_dir()

    def _install_verified_zip(self, zip_path: Path, *, entry: CatalogEntry | None, replace: bool) -> InstalledModel:
        """Extract a zip whose own integrity is established, check the bundle, move it into the store."""
        workdir = Path(tempfile.mkdtemp(prefix=".extract-", dir=self._temp_dir()))
        try:
            _safe_extract(zip_path, workdir)
            bundle = _find_bundle_root(workdir, zip_path.name)
            manifest = load_manifest(bundle)
            verify_weights(manifest)
            if entry is not None and (manifest.id, manifest.version) != (entry.id, entry.version):
                raise ModelError(
                    f"The download for {entry.name} holds bundle {manifest.name}; the catalog {entry.source} is wrong."
                )
            return self._place(bundle, manifest, replace=replace)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _place(self, bundle: Path, manifest: BundleManifest, *, replace: bool) -> InstalledModel:
        """Rename a verified bundle folder to its store folder (same file system: atomic)."""
        target = self.folder_for(manifest.id, manifest.version)
        target.parent.mkdir(parents=True, exist_ok=True)
        aside: Path | None = None
        if target.exists() and replace:
            aside = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self._temp_dir()))
            os.rename(target, aside / "bundle")
        try:
            os.rename(bundle, target)
        except OSError:
            if aside is not None and not target.exists():
                os.rename(aside / "bundle", target)  # put the previous bundle back
            if not target.exists() or aside is not None:
                raise
            existing = load_manifest(target)  # installed meanwhile, or earlier without replace
            if existing.weights_sha256 != manifest.weights_sha256:
                raise ModelError(
                    f"A different bundle {manifest.name} is already installed in {target}; "
                    f"remove it first with 'medfuse models remove {manifest.id}'."
                ) from None
            verify_weights(existing)
            return InstalledModel(existing.id, existing.version, target, existing)
        finally:
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
        return InstalledModel(manifest.id, manifest.version, target, load_manifest(target))

    # --- checking, removing, resolving ------------------------------------------------------------

    def verify(self, model_id: str, version: str | None = None) -> VerifyResult:
        """Re-check an installed bundle: manifest, the weights' sha256, their safetensors header, and
        that their tensor names and shapes fit the architecture (planned on torch's meta device).

        Raises:
            ModelError: not installed, corrupt (sha256 mismatch), not safetensors, too large, or
                not fitting the architecture.
        """
        installed = self.find_installed(model_id, version)
        sha256 = verify_weights(installed.manifest)
        check_weights_fit(installed.manifest)  # a pickle renamed .safetensors fails here, never unpickled
        return VerifyResult(installed.id, installed.version, installed.folder, sha256)

    def remove(self, model_id: str, version: str | None = None) -> list[Path]:
        """Delete an installed bundle: one version, or every version when ``version`` is None.

        Returns:
            The folders removed.

        A refused bundle (invalid or unsafe manifest) of that id and version is removed too.

        Raises:
            ModelError: nothing matching is installed.
        """
        matches = [m.folder for m in self.list_installed() if m.id == model_id and version in (None, m.version)]
        matches += [r.folder for r in refused_bundles(self._candidate_folders(), model_id, version)]
        if not matches and self.find_installed(model_id, version).bundled:  # raises when neither
            raise ModelError(f"Model '{model_id}' is bundled with SlicerMedFuse (read-only); it cannot be removed.")
        removed = []
        for folder in matches:
            trash = Path(tempfile.mkdtemp(prefix=".removing-", dir=self._temp_dir()))
            os.rename(folder, trash / "bundle")  # disappears at once, then is deleted
            shutil.rmtree(trash, ignore_errors=True)
            removed.append(folder)
            parent = folder.parent
            if parent != self.models_dir and not any(parent.iterdir()):
                parent.rmdir()
        self._cleanup_temp_dir()
        return removed

    def resolve(self, id_or_path: str | os.PathLike[str], version: str | None = None) -> Path:
        """The bundle folder for a model id, a bundle folder path or a bundle ``.zip`` path.

        An id may carry its version as ``id@version``. A ``.zip`` is installed into the store first
        (offline drop-in). Nothing is downloaded.

        Raises:
            ModelError: the path is not a bundle, or the id is not installed (the message says how
                to install it or where to drop the bundle).
        """
        text = os.fspath(id_or_path)
        path = Path(text).expanduser()
        looks_like_path = (
            isinstance(id_or_path, os.PathLike)
            or any(sep in text for sep in ("/", "\\"))
            or text.startswith(("~", "."))
            or text.lower().endswith(".zip")
        )
        # A bare word is an id even if the working directory happens to hold a folder of that name.
        if (path.is_dir() and (looks_like_path or (path / MANIFEST_FILE).is_file())) or (
            path.is_file() and path.name == MANIFEST_FILE
        ):
            manifest = load_manifest(path)
            assert manifest.folder is not None
            return manifest.folder
        if path.is_file() and path.suffix.lower() == ".zip":
            return self.install_zip(path).folder
        if looks_like_path:
            raise ModelError(
                f"No model bundle at {path}; give a bundle folder, a bundle .zip or an installed model id."
            )
        model_id, _, at_version = text.partition("@")
        return self.find_installed(model_id, version or at_version or None).folder

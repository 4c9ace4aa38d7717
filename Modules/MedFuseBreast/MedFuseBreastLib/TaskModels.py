"""The model bundles one backend task can run: listing, the default, resolving a choice, describing one.

Task-generic (the breast panel uses it for ``breast-mass`` and ``aln-metastasis``); it reads the
user's model store and the bundles shipped with SlicerMedFuse, and needs neither Qt nor MRML.
"""

from __future__ import annotations

import os
from pathlib import Path

from SlicerMedFuse.errors import MedFuseError
from SlicerMedFuse.models.bundle import load_manifest
from SlicerMedFuse.models.manifest import BundleManifest, version_key
from SlicerMedFuse.models.store import InstalledModel, ModelStore

__all__ = ["TaskModels"]


class TaskModels:
    """Model bundles for one task.

    Args:
        task: the backend task name the bundles must declare, e.g. ``"breast-mass"``.
        defaultId: the bundle id used when none is chosen (the task's demo model).
        store: the model store; default ``$MEDFUSE_HOME`` or ``~/.medfuse`` (read again on every
            call, as the backend process does).
    """

    def __init__(self, task: str, defaultId: str, store: ModelStore | None = None) -> None:
        self.task = task
        self.defaultId = defaultId
        self.store = store

    def _store(self) -> ModelStore:
        return self.store if self.store is not None else ModelStore()

    def installed(self) -> list[InstalledModel]:
        """The task's bundles sorted by id then version: installed ones, then shipped ones whose id is not installed."""
        store = self._store()
        own = [model for model in store.list_installed() if model.manifest.task == self.task]
        ownIds = {model.id for model in own}
        shipped = [
            model for model in store.list_bundled() if model.manifest.task == self.task and model.id not in ownIds
        ]
        return sorted(own + shipped, key=lambda model: (model.id, version_key(model.version)))

    def default(self) -> InstalledModel | None:
        """The latest version of the default id, else the latest bundle of the task, else None."""
        models = self.installed()
        preferred = [model for model in models if model.id == self.defaultId]
        return (preferred or models or [None])[-1]

    def noModelMessage(self) -> str:
        """One sentence on how to get a model for the task."""
        store = self._store()
        try:
            listed = sorted({entry.id for entry in store.catalog.entries if entry.task == self.task})
        except MedFuseError:
            listed = []
        return (
            f"No model for the '{self.task}' task is installed: install one with "
            f"'medfuse models install {(listed or [self.defaultId])[0]}' or drop a bundle folder into {store.models_dir}."
        )

    def resolve(self, model: str | os.PathLike | None = None) -> BundleManifest:
        """The manifest of ``model``: an id (``id`` or ``id@version``), a bundle folder, or None for :meth:`default`.

        Raises:
            ValueError: nothing installed, not a bundle, or a bundle of another task (one sentence).
        """
        text = os.fspath(model).strip() if model is not None else ""
        if not text:
            chosen = self.default()
            if chosen is None:
                raise ValueError(self.noModelMessage())
            return chosen.manifest
        try:
            folder = Path(text).expanduser()
            if folder.is_dir():
                manifest = load_manifest(folder)
            else:
                modelId, _, version = text.partition("@")
                manifest = self._store().find_installed(modelId, version or None).manifest
        except MedFuseError as error:
            raise ValueError(error.message) from None
        if manifest.task != self.task:
            raise ValueError(
                f"The model '{manifest.name}' serves the '{manifest.task}' task, not '{self.task}'; choose another model."
            )
        return manifest

    @staticmethod
    def reference(manifest: BundleManifest) -> str:
        """``id@version``, how panels and saved scenes name a model."""
        return f"{manifest.id}@{manifest.version}"

    @staticmethod
    def describe(manifest: BundleManifest) -> str:
        """Plain-text lines for the panel: title and version, licence, intended use, training data."""
        training = manifest.data.get("training", {}).get("data", "")
        lines = [
            f"{manifest.title} (version {manifest.version})",
            f"Licence: {manifest.license}",
            f"Intended use: {manifest.intended_use}",
        ]
        return "\n".join([*lines, f"Trained on: {training}"] if training else lines)

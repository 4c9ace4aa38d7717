"""What a module's logic chooses for one backend task: the model bundle and the task parameters.

:class:`TaskModels` lists the task's model bundles (the user's model store, then those shipped with
SlicerMedFuse), picks the default, resolves a choice and describes one. Task-generic
(:class:`MedFuseLib.task_logic.TaskLogic` holds one); needs neither Qt nor MRML.
"""

from __future__ import annotations

import os
from pathlib import Path

from SlicerMedFuse.facade import BundleManifest, InstalledModel, MedFuseError, ModelStore, load_manifest, version_key

__all__ = ["TaskModels"]


class TaskModels:
    """Model bundles for one task.

    Args:
        task: the backend task name the bundles must declare, e.g. ``"breast-mass"``.
        defaultId: the bundle id used when none is chosen (the task's demo model).
        store: the model store; default ``$MEDFUSE_HOME`` or ``~/.medfuse`` (read again on every
            call, as the backend process does).

    A module words its sentences with a subclass that sets :attr:`NO_MODEL_MESSAGE` and
    :attr:`WRONG_TASK_MESSAGE` (``str.format`` fields as below).
    """

    #: No bundle of the task: fields ``task``, ``suggestion`` (an id to install), ``modelsDir``.
    NO_MODEL_MESSAGE = (
        "No model for the '{task}' task is installed: install one with "
        "'medfuse models install {suggestion}' or drop a bundle folder into {modelsDir}."
    )
    #: A chosen bundle declares another task: fields ``name``, ``modelTask``, ``task``.
    WRONG_TASK_MESSAGE = "The model '{name}' serves the '{modelTask}' task, not '{task}'; choose another model."

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
        return self.NO_MODEL_MESSAGE.format(
            task=self.task, suggestion=(listed or [self.defaultId])[0], modelsDir=store.models_dir
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
                self.WRONG_TASK_MESSAGE.format(name=manifest.name, modelTask=manifest.task, task=self.task)
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

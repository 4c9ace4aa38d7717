"""A panel's model selector: a combo box of a task's model bundles bound to a parameter node field.

The combo lists the task's installed and shipped bundles (:class:`MedFuseLib.task_models.TaskModels`)
as ``id@version`` references, follows the parameter node (the default model when it names none or
one not installed here), and shows the chosen model's title, licence, intended use, training data
and warnings beside it. Works on the PythonQt widgets of a module's ``.ui``; imports nothing of Slicer.
"""

from __future__ import annotations

from MedFuseLib.task_models import TaskModels

__all__ = ["ModelSelector"]


class ModelSelector:
    """A model combo box bound to a parameter node field, with the chosen model's description (and warnings) beside it.

    Args:
        combo: the QComboBox; items are ``id@version`` references.
        models: the task's :class:`MedFuseLib.task_models.TaskModels`.
        field: the parameter node field that stores the reference ("" = the default model).
        infoLabel: shows title, licence, intended use and training data.
        warnings: manifest -> warning lines, shown in ``warningLabel``.
    """

    def __init__(self, combo, models, field: str, infoLabel, warningLabel=None, warnings=None) -> None:
        self.combo, self.models, self.field = combo, models, field
        self.infoLabel, self.warningLabel, self.warnings = infoLabel, warningLabel, warnings
        self.manifests = {}
        self.defaultReference = ""

    def refresh(self, parameters) -> None:
        """List the task's models again and show the parameter node's choice."""
        installed = self.models.installed()
        self.manifests = {TaskModels.reference(model.manifest): model.manifest for model in installed}
        default = self.models.default()
        self.defaultReference = TaskModels.reference(default.manifest) if default else ""
        self.combo.blockSignals(True)
        self.combo.clear()
        for reference, manifest in self.manifests.items():
            self.combo.addItem(f"{manifest.title} ({manifest.version})", reference)
        self.combo.enabled = bool(installed)
        self.combo.blockSignals(False)
        if not installed:
            self.infoLabel.text = self.models.noModelMessage()
            if self.warningLabel is not None:
                self.warningLabel.text = ""
            return
        self.show(parameters)
        self.onSelected(self.combo.currentIndex, parameters)

    def show(self, parameters) -> None:
        """Select the parameter node's model (the default when it names none or one not installed here)."""
        if self.combo.count == 0 or not parameters:
            return
        index = max(self.combo.findData(getattr(parameters, self.field) or self.defaultReference), 0)
        if self.combo.currentIndex != index:
            self.combo.currentIndex = index  # emits currentIndexChanged -> onSelected

    def onSelected(self, index: int, parameters) -> None:
        manifest = self.manifests.get(self.combo.itemData(index)) if index >= 0 else None
        if manifest is None:
            return
        self.infoLabel.text = TaskModels.describe(manifest)
        if self.warningLabel is not None:
            self.warningLabel.text = "\n".join(self.warnings(manifest))
        reference = TaskModels.reference(manifest)
        if parameters and getattr(parameters, self.field) != reference:
            setattr(parameters, self.field, reference)

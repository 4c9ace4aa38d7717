"""Task ``aln-metastasis`` (research): probability of axillary lymph node metastasis from breast MRI and clinical data.

Inputs by role: ``dce`` (a post-contrast T1 / one DCE phase, required), ``t2w`` (optional: its
network path then sees zeros, as the bundle declares, and the report says so) and ``mass`` (an
optional label map of the lesion on any grid: the image cube is centred on it; without it the
cube is centred on the DCE volume and the report says so). Parameters: the paper's ten clinical
features, all required (:data:`~SlicerMedFuse.breast.aln_clinical.CLINICAL_FIELDS`), and an
optional ``threshold``. The task writes no images: its result is ``report["aln"]`` =
``{"probability", "threshold", "positive", "intended_use", "model"}``, which ``medfuse run``
prints as JSON. Network: the Transfer Module classifier
(:class:`~SlicerMedFuse.nets.classifier.TransferModuleClassifier`); pipeline:
:mod:`SlicerMedFuse.breast.aln_inference`. Without ``model`` the spec's ``default_model`` is
used -- trained on simulated cases, it demonstrates the pipeline only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.specs import aln_metastasis as aln_metastasis_spec
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["DEFAULT_MODEL", "AlnMetastasisTask"]

#: Bundle id used when no model is given (the spec's ``default_model``).
DEFAULT_MODEL = aln_metastasis_spec.SPEC.default_model


class AlnMetastasisTask(Task):
    """ALN metastasis probability from DCE (+ T2W) breast MRI and ten clinical features (research use)."""

    spec = aln_metastasis_spec.SPEC

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        """Refuse a missing or out-of-range clinical field (UsageError) and a CT given for an MR role (InputError)."""
        from SlicerMedFuse.breast.aln_clinical import check_clinical
        from SlicerMedFuse.breast.sequences import check_mr_role

        check_clinical(params)
        for role in ("dce", "t2w"):
            if role in inputs:
                check_mr_role(inputs[role], role, self.spec.input(role).title)

    def summary(self, report: Mapping[str, Any]) -> Any:
        """``report["aln"]``, which ``medfuse run`` prints."""
        return report.get("aln")

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        from SlicerMedFuse.breast.aln_inference import AlnClassifier

        context.progress.update(0.0, "loading model")
        classifier = AlnClassifier(
            context.model if context.model is not None else self.spec.default_model,
            task_spec=self.spec,
            device=context.device.torch_device(),
        )
        context.progress.update(0.3, "classifying")
        images = {role: image for role, image in inputs.items() if role != "mass"}
        prediction = classifier.predict(images, params, inputs.get("mass"), params["threshold"])
        for sentence in prediction.warnings:
            context.progress.log(sentence, level="warning")
        context.progress.update(1.0, "classified")
        return TaskResult(outputs={}, report=prediction.report(classifier.preprocessing.crop_mm))

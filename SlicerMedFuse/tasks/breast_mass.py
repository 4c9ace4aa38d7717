"""Task ``breast-mass``: breast mass segmentation from T1C (master) with optional T2W and pre-contrast.

Inputs by role: ``t1c`` (contrast-enhanced T1, the master sequence, required), ``t2w`` (the
assistant, optional) and ``pre`` (pre-contrast T1, optional: the bundle's subtraction channel
``t1c - pre``, the DCE paper's input). T2W and pre-contrast must show the T1C's anatomy at the same
physical place: on another grid they are resampled onto the T1C, and when they are not in register
the task says so and names the registration task's rigid alignment. A missing assistant runs
through the network's presence mask. Output: the binary "Mass" label on the T1C grid (coded
terminology) and, with ``attention_maps``, the master spatial-attention maps of the five encoder
blocks as volumes. The network is chosen by ``run_task(..., model=...)`` / ``medfuse run --model``;
without one the spec's ``default_model`` is used. Declaration: :mod:`SlicerMedFuse.specs.breast_mass`;
pipeline: :mod:`SlicerMedFuse.breast`.

Multi-phase (DCE) series: :meth:`BreastMassTask.prepare_inputs` picks the phase chosen with
``phase`` / ``pre_phase`` from a 4D series (or says how to choose); it must run before the generic
3D checks of :func:`SlicerMedFuse.api.run_task`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.specs import breast_mass as breast_mass_spec
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["DEFAULT_MODEL", "BreastMassTask"]

#: Bundle id used when no model is given (the spec's ``default_model``).
DEFAULT_MODEL = breast_mass_spec.SPEC.default_model


class BreastMassTask(Task):
    """Segment breast masses on T1C, guided by T2W (master/assistant attention), robust to a missing T2W."""

    spec = breast_mass_spec.SPEC

    def prepare_inputs(self, images: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> dict[str, sitk.Image]:
        """Pick the chosen phases of multi-phase series (InputError when a choice is missing).

        ``t1c`` gives phase ``phase``; ``pre`` gives phase ``pre_phase``; a multi-phase ``t1c``
        without a ``pre`` input also gives the pre-contrast when ``pre_phase`` is set.
        """
        from SlicerMedFuse.breast.sequences import phase_count, select_phase
        from SlicerMedFuse.errors import InputError

        prepared = dict(images)
        if "t1c" in images:
            series = images["t1c"]
            prepared["t1c"] = select_phase(series, params.get("phase"), "t1c", "phase")
            if "pre" not in images and params.get("pre_phase") is not None and phase_count(series) > 1:
                prepared["pre"] = select_phase(series, params["pre_phase"], "t1c", "pre_phase")
        if "pre" in images:
            prepared["pre"] = select_phase(images["pre"], params.get("pre_phase"), "pre", "pre_phase")
        if "t2w" in images and phase_count(images["t2w"]) > 1:
            raise InputError(
                f"Input 't2w' holds {phase_count(images['t2w'])} volumes; give a single T2W volume (one echo or series)."
            )
        return prepared

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        """Refuse a missing T1C and a CT given for an MR role (InputError, one sentence)."""
        from SlicerMedFuse.breast.study import check_roles

        check_roles(inputs)

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        from SlicerMedFuse.breast.inference import segment_breast_mass
        from SlicerMedFuse.breast.study import prepare_study

        context.progress.update(0.0, "aligning sequences to the T1C")
        study = prepare_study(inputs, max_shift_mm=params["max_misalignment_mm"])
        model = str(context.model) if context.model is not None else self.spec.default_model
        result = segment_breast_mass(
            study,
            model,
            task_spec=self.spec,
            device=context.device,
            progress=context.progress.span(0.05, 1.0),
            attention_maps=params["attention_maps"],
            threshold=params["threshold"],
        )
        report = result.report()
        report["alignment"] = study.notes
        return TaskResult(outputs={"mass": result.mask, **result.attention}, report=report)

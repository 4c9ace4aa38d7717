"""Task ``hemorrhage``: 5-class intracranial hemorrhage segmentation of a non-contrast head CT.

Labels, values and terminology are BHSD's (Wu et al., MLMI 2023): 1 EDH, 2 IPH, 3 IVH, 4 SAH,
5 SDH. The network is chosen by ``run_task(..., model=...)`` / ``medfuse run --model`` (a bundle
id or folder); without one the spec's ``default_model`` is used. The pipeline
(canonical orientation, resampling to the model spacing, BHSD/multi-window preprocessing, sliding
window, argmax, back to the input grid, small-component removal, per-class measurements) lives in
:mod:`SlicerMedFuse.hemorrhage.inference`; the declaration is :mod:`SlicerMedFuse.specs.hemorrhage`; this module is the glue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.specs import hemorrhage as hemorrhage_spec
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["DEFAULT_MODEL", "HemorrhageTask"]

#: Bundle id used when no model is given (the spec's ``default_model``).
DEFAULT_MODEL = hemorrhage_spec.SPEC.default_model


class HemorrhageTask(Task):
    """Segment EDH, IPH, IVH, SAH and SDH in a head CT and measure each class (mL, components, slices)."""

    spec = hemorrhage_spec.SPEC

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        """Reject an MR (or unscaled CT) and a CT without a head (InputError, one sentence).

        The head check runs on a copy binned to about 2 mm voxels: the skull-enclosed volume it
        measures does not need finer voxels, and binning makes it several times faster.
        """
        import SimpleITK as sitk

        from SlicerMedFuse.hemorrhage.preprocessing import check_ct_intensities, check_head_in_view

        ct = inputs["ct"]
        check_ct_intensities(ct)
        factors = [max(1, int(2.0 / s)) for s in ct.GetSpacing()]
        check_head_in_view(sitk.BinShrink(ct, factors) if max(factors) > 1 else ct)

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        from SlicerMedFuse.hemorrhage.inference import segment_hemorrhage

        model = str(context.model) if context.model is not None else self.spec.default_model
        result = segment_hemorrhage(
            inputs["ct"],
            model,
            task_spec=self.spec,
            device=context.device,
            progress=context.progress,
            mirroring=params["mirroring"],
            overlap=params["overlap"],
            min_component_ml=params["min_component_ml"],
            model_postprocessing=params["model_postprocessing"],
        )
        return TaskResult(outputs={"labels": result.labels}, report=result.report())

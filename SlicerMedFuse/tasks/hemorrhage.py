"""Task ``hemorrhage``: 5-class intracranial hemorrhage segmentation of a non-contrast head CT.

Labels, values and terminology are BHSD's (Wu et al., MLMI 2023): 1 EDH, 2 IPH, 3 IVH, 4 SAH,
5 SDH. The network is chosen by ``run_task(..., model=...)`` / ``medfuse run --model`` (a bundle
id or folder); without one the installed demo bundle :data:`DEFAULT_MODEL` is used. The pipeline
(canonical orientation, resampling to the model spacing, BHSD/multi-window preprocessing, sliding
window, argmax, back to the input grid, small-component removal, per-class measurements) lives in
:mod:`SlicerMedFuse.hemorrhage.inference`; this module is the contract and the glue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["DEFAULT_MODEL", "HemorrhageTask"]

#: Bundle id used when no model is given: the CPU demo model with brain, subdural and bone windows
#: fused by the Transfer Module, trained on simulated bleeds. It scores higher than the single-window
#: demo (``medfuse-hemorrhage-demo``) on the held-out simulated cases and leaves no false-positive
#: volume on the real normal CT (``benchmarks/results/hemorrhage_postprocessing.md``).
DEFAULT_MODEL = "medfuse-hemorrhage-demo-multiwindow"


class HemorrhageTask(Task):
    """Segment EDH, IPH, IVH, SAH and SDH in a head CT and measure each class (mL, components, slices)."""

    spec = TaskSpec(
        name="hemorrhage",
        title="Intracranial hemorrhage segmentation (BHSD, 5 classes)",
        summary=(
            "Segments epidural, intraparenchymal, intraventricular, subarachnoid and subdural hemorrhage on a "
            "non-contrast head CT and reports each class's volume (mL), number of components and slice range."
        ),
        inputs=(
            InputSpec(
                "ct",
                "Head CT",
                modalities=("CT",),
                description="Non-contrast head CT in Hounsfield units covering the brain.",
            ),
        ),
        outputs=(
            OutputSpec(
                "labels",
                "Hemorrhage label map",
                kind="labelmap",
                description="uint8 label map on the CT's grid: 0 background, 1 EDH, 2 IPH, 3 IVH, 4 SAH, 5 SDH.",
                reference_role="ct",
                primary=True,
            ),
        ),
        parameters=(
            ParameterSpec(
                "mirroring",
                "bool",
                False,
                "Average the prediction over left-right mirrored copies (test-time augmentation, about 2x slower).",
            ),
            ParameterSpec(
                "min_component_ml",
                "float",
                0.05,
                "Remove connected components of a class smaller than this volume; 0 keeps all.",
                minimum=0.0,
                maximum=100.0,
                unit="mL",
            ),
            ParameterSpec(
                "model_postprocessing",
                "bool",
                True,
                "Also remove components below the model's per-class minimum volumes, chosen on validation cases "
                "after training (the larger of the two values applies).",
            ),
            ParameterSpec(
                "overlap",
                "float",
                0.5,
                "Overlap of neighbouring sliding-window patches (fraction of the patch).",
                minimum=0.0,
                maximum=0.9,
            ),
        ),
        labels=HEMORRHAGE_LABELS,
        references=(
            "Wu et al., BHSD: A 3D Multi-class Brain Hemorrhage Segmentation Dataset, MLMI 2023.",
            "Isensee et al., nnU-Net: a self-configuring method for deep learning-based biomedical image "
            "segmentation, Nat. Methods 2021.",
            "Gravina et al., Cross-Modality Calibration in Multi-Input Network for Axillary Lymph Node Metastasis "
            "Evaluation (Transfer Module).",
        ),
        needs_model=True,
    )

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

        model = str(context.model) if context.model is not None else DEFAULT_MODEL
        result = segment_hemorrhage(
            inputs["ct"],
            model,
            device=context.device,
            progress=context.progress,
            mirroring=params["mirroring"],
            overlap=params["overlap"],
            min_component_ml=params["min_component_ml"],
            model_postprocessing=params["model_postprocessing"],
        )
        return TaskResult(outputs={"labels": result.labels}, report=result.report())

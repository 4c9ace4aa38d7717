"""Declaration of task ``hemorrhage`` (torch-free): 5-class intracranial hemorrhage on a non-contrast head CT.

Labels, values and terminology are BHSD's (Wu et al., MLMI 2023): 1 EDH, 2 IPH, 3 IVH, 4 SAH,
5 SDH (:mod:`SlicerMedFuse.hemorrhage.labels`). :data:`THICK_SLICE_MM` is the slice thickness above
which thin bleeds may be missed (the panel and the segmentation both warn).
"""

from __future__ import annotations

from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS
from SlicerMedFuse.hemorrhage.preprocessing import THICK_SLICE_MM

__all__ = ["SPEC", "THICK_SLICE_MM"]

SPEC = TaskSpec(
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
    # the CPU demo model with brain, subdural and bone windows fused by the Transfer Module, trained on
    # simulated bleeds: it scores higher than the single-window demo (medfuse-hemorrhage-demo) on the
    # held-out simulated cases and leaves no false-positive volume on the real normal CT
    # (benchmarks/results/hemorrhage_postprocessing.md)
    default_model="medfuse-hemorrhage-demo-multiwindow",
)

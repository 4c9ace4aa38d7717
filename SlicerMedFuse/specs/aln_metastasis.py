"""Declaration of task ``aln-metastasis`` (research, torch-free): ALN metastasis probability from breast MRI.

The parameters are the paper's ten clinical features
(:data:`~SlicerMedFuse.breast.aln_clinical.CLINICAL_FIELDS`), all required, and an optional
threshold; the task writes no images (its result is in the report).
"""

from __future__ import annotations

from SlicerMedFuse.breast.aln_clinical import CLINICAL_FIELDS
from SlicerMedFuse.contract import InputSpec, ParameterSpec, TaskSpec

__all__ = ["SPEC"]

_CLINICAL_PARAMETERS = tuple(
    ParameterSpec(
        field.name,
        "float",
        None,
        f"Required clinical feature: {field.title}.",
        minimum=field.minimum,
        maximum=field.maximum,
        unit=f" {field.unit}" if field.unit else "",
    )
    for field in CLINICAL_FIELDS
)

SPEC = TaskSpec(
    name="aln-metastasis",
    title="Axillary lymph node metastasis probability (research)",
    summary=(
        "Probability that the axillary lymph nodes are metastatic, from a lesion-centred DCE (and T2W) cube and "
        "ten clinical features, with the Transfer Module multi-input classifier; writes no images, the result "
        "is in the report. Research use only."
    ),
    inputs=(
        InputSpec(
            "dce",
            "DCE (post-contrast T1)",
            modalities=("MR",),
            description="Post-contrast T1-weighted breast MRI (one DCE phase), the required sequence.",
        ),
        InputSpec(
            "t2w",
            "T2W",
            modalities=("MR",),
            required=False,
            description="T2-weighted breast MRI of the same study (any grid); without it its path sees zeros.",
        ),
        InputSpec(
            "mass",
            "Lesion label",
            kind="labelmap",
            required=False,
            description="Label map of the lesion (non-zero inside), any grid; the image cube is centred on it. "
            "Without it the cube is centred on the DCE volume.",
        ),
    ),
    outputs=(),
    parameters=(
        *_CLINICAL_PARAMETERS,
        ParameterSpec(
            "threshold",
            "float",
            None,
            "Probability at or above which the result is called positive (default: the model's).",
            minimum=0.01,
            maximum=0.99,
        ),
    ),
    references=(
        "Gravina et al., Cross-Modality Calibration in Multi-Input Network for Axillary Lymph Node Metastasis "
        "Evaluation (Transfer Module; code Michela94CE/Cross-Modality-Calibration-with-Transfer-Module).",
    ),
    needs_model=True,
    # the CPU demo model, trained on simulated cases: it demonstrates the pipeline only
    default_model="medfuse-aln-metastasis-demo",
)

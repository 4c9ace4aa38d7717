"""Declaration of task ``breast-mass`` (torch-free): T1C (master) with optional T2W and pre-contrast.

The output is the coded "Mass" label (:mod:`SlicerMedFuse.breast.labels`) on the T1C grid and,
on request, the master spatial-attention maps of the five encoder blocks.
"""

from __future__ import annotations

from SlicerMedFuse.breast.labels import MASS_LABELS
from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec

__all__ = ["SPEC"]

_ATTENTION_OUTPUTS = tuple(
    OutputSpec(
        f"attention_{level}",
        f"Spatial attention, block {level}",
        description=f"Master (T1C) SA map of encoder block {level} (0..1) on the T1C grid; needs attention_maps.",
        reference_role="t1c",
    )
    for level in range(1, 6)
)

SPEC = TaskSpec(
    name="breast-mass",
    title="Breast mass segmentation (T1C master, T2W assistant)",
    summary=(
        "Segments breast masses on the contrast-enhanced T1 with the T2W as assistant sequence (which tells "
        "enhancing normal tissue from masses) and optionally the pre-contrast subtraction; slice-wise 2D."
    ),
    inputs=(
        InputSpec(
            "t1c",
            "T1C (post-contrast T1)",
            modalities=("MR",),
            description="Fat-suppressed contrast-enhanced T1 (one post-contrast phase): the master sequence.",
        ),
        InputSpec(
            "t2w",
            "T2W",
            modalities=("MR",),
            required=False,
            description="Fat-suppressed T2-weighted, aligned with the T1C in physical space (assistant).",
        ),
        InputSpec(
            "pre",
            "Pre-contrast T1",
            modalities=("MR",),
            required=False,
            description="Pre-contrast T1 of the same DCE series; gives the subtraction image (T1C - pre).",
        ),
    ),
    outputs=(
        OutputSpec(
            "mass",
            "Mass label map",
            kind="labelmap",
            description="uint8 label map on the T1C grid: 0 background, 1 Mass.",
            reference_role="t1c",
            primary=True,
        ),
        *_ATTENTION_OUTPUTS,
    ),
    parameters=(
        ParameterSpec(
            "phase",
            "int",
            None,
            "Phase of a multi-phase (DCE) T1C series to segment, 0-based (the DCE paper: 2nd post-contrast).",
            minimum=0,
        ),
        ParameterSpec(
            "pre_phase",
            "int",
            None,
            "Phase of a multi-phase series to use as pre-contrast (from 'pre', or from the T1C series when "
            "'pre' is not given).",
            minimum=0,
        ),
        ParameterSpec(
            "attention_maps",
            "bool",
            False,
            "Also output the master spatial-attention maps of the five encoder blocks (attention_1..5).",
        ),
        ParameterSpec(
            "max_misalignment_mm",
            "float",
            6.0,
            "Refuse T2W / pre-contrast shifted against the T1C by more than this; 0 disables the check.",
            minimum=0.0,
            maximum=100.0,
            unit="mm",
        ),
        ParameterSpec(
            "threshold",
            "float",
            0.5,
            "Mass probability at or above which a voxel is labelled.",
            minimum=0.01,
            maximum=0.99,
        ),
    ),
    labels=MASS_LABELS,
    references=(
        "Li et al., Learning Cross-Modal Deep Representations for Multi-Modal MR Image Segmentation, MICCAI 2019.",
        "Zhang et al., Contrastive learning for breast tumor segmentation in DCE-MRI, MLMI 2023 (subtraction input).",
        "Konwer et al., MagNET: missing-modality segmentation, MLMI 2023 (modality dropout, presence mask).",
    ),
    needs_model=True,
    # the CPU demo model, trained on phantoms
    default_model="medfuse-breast-mass-demo",
)

"""Declaration of task ``registration`` (torch-free): training-free deformable registration of two 3D images.

Besides the task's own parameters every preset parameter (:data:`~SlicerMedFuse.registration.presets.PARAMETERS`)
is an optional override (None keeps the preset's value), so names, ranges and descriptions are
written once, in the presets module; the user-facing names of their choices are written here.
"""

from __future__ import annotations

from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec
from SlicerMedFuse.registration.presets import PARAMETERS, PRESETS

__all__ = ["CHOICE_LABELS", "LABEL_INTERPOLATIONS", "SPEC"]

#: How the moving labels are carried onto the fixed grid.
LABEL_INTERPOLATIONS = ("label", "nearest")

#: Parameter -> choice -> what a person reads (the panel's combo boxes).
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "label_interpolation": {"label": "Label-aware (one-hot)", "nearest": "Nearest neighbour"},
    "initialization": {
        "none": "None (identity)",
        "geometry": "Image centres",
        "com": "Centres of mass",
        "moments": "Moments (principal axes)",
    },
    "linear_stage": {"none": "None", "rigid": "Rigid", "affine": "Affine"},
    "similarity": {
        "lncc": "Local normalised cross-correlation (same modality)",
        "mind": "MIND-SSC (different modalities)",
        "mse": "Mean squared error (identical intensities)",
    },
    "linear_similarity": {
        "same": "Same as the deformable stage",
        "lncc": "Local normalised cross-correlation (same modality)",
        "mind": "MIND-SSC (different modalities)",
        "mse": "Mean squared error (identical intensities)",
    },
    "regularizer": {
        "none": "None",
        "diffusion": "Diffusion (explicit penalty)",
        "implicit_diffusion": "Diffusion, implicitly solved (FFT)",
        "implicit_elastic": "Linear elasticity, implicitly solved (FFT)",
        "implicit_curvature": "Curvature, implicitly solved (FFT)",
    },
    "scheme": {"projection": "Projection of the field", "penalty": "Decoupled penalty"},
    "boundary": {"periodic": "Periodic", "neumann": "Neumann (mirror)", "padded": "Zero-padded"},
}


def _labels_of(name: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(CHOICE_LABELS[name][choice] for choice in choices) if choices else ()


def _override_specs() -> tuple[ParameterSpec, ...]:
    """One optional override per preset parameter (default None = the preset's value)."""
    specs = []
    for name, info in PARAMETERS.items():
        kind = "str" if info.kind in ("ints", "floats") else info.kind
        description = (
            info.description
            + (" Comma-separated." if info.kind in ("ints", "floats") else "")
            + " Default: from the preset."
        )
        specs.append(
            ParameterSpec(
                name,
                kind,
                None,
                description,
                minimum=info.minimum,
                maximum=info.maximum,
                choices=info.choices,
                unit=info.unit,
                choice_labels=_labels_of(name, info.choices),
            )
        )
    return tuple(specs)


SPEC = TaskSpec(
    name="registration",
    title="Deformable registration (training-free, multi-modal)",
    summary="Aligns a moving image to a fixed one (rigid, affine, then a dense deformation) and carries its labels along.",
    inputs=(
        InputSpec("fixed", "Fixed image", description="The reference: outputs lie on its grid."),
        InputSpec("moving", "Moving image", description="The image to align; any modality."),
        InputSpec(
            "fixed_mask",
            "Fixed mask",
            kind="mask",
            required=False,
            aligned_with="fixed",
            description="Where the similarity counts in the fixed image.",
        ),
        InputSpec(
            "moving_mask",
            "Moving mask",
            kind="mask",
            required=False,
            aligned_with="moving",
            description="Where the similarity counts in the moving image.",
        ),
        InputSpec(
            "moving_labels",
            "Moving labels",
            kind="labelmap",
            required=False,
            aligned_with="moving",
            description="A label map of the moving image to carry along.",
        ),
    ),
    outputs=(
        OutputSpec(
            "displacement",
            "Displacement field",
            kind="transform",
            reference_role="fixed",
            primary=True,
            description="ITK displacement field in LPS mm on the fixed grid (fixed point -> moving point), the whole transform.",
        ),
        OutputSpec(
            "warped",
            "Warped moving image",
            reference_role="fixed",
            description="The moving image resampled onto the fixed grid.",
        ),
        OutputSpec(
            "warped_labels",
            "Warped labels",
            kind="labelmap",
            reference_role="fixed",
            description="The moving labels on the fixed grid (needs moving_labels).",
        ),
    ),
    parameters=(
        ParameterSpec(
            "preset",
            "str",
            "fast",
            f"A built-in preset ({', '.join(PRESETS)}) or the path of a user preset .json file.",
        ),
        ParameterSpec(
            "label_interpolation",
            "choice",
            "label",
            "label: label-aware (one-hot) interpolation; nearest: nearest neighbour.",
            choices=LABEL_INTERPOLATIONS,
            choice_labels=_labels_of("label_interpolation", LABEL_INTERPOLATIONS),
        ),
        ParameterSpec(
            "initial_transform",
            "str",
            None,
            "Optional linear transform file (.tfm/.h5/.txt, fixed -> moving) replacing the initialisation.",
            file="read",
        ),
        ParameterSpec(
            "transform_file",
            "str",
            None,
            "Also write the whole transform here as an ITK .h5 transform file (a DisplacementFieldTransform, "
            "the same mapping as the displacement output).",
            file="write",
        ),
        *_override_specs(),
    ),
    references=(
        "Mok et al., Deformable Medical Image Registration Under Distribution Shifts with Neural Instance Optimization, MLMI 2023.",
        "Ehrhardt & Handels, Implicitly Solved Regularization for Learning-Based Image Registration, MLMI 2023.",
        "Heinrich et al., Towards Realtime Multimodal Fusion for Image-Guided Interventions Using Self-similarities (MIND-SSC), MICCAI 2013.",
    ),
)

"""Declaration of task ``superres`` and its checks on the input's grid (torch-free).

Methods: SR4ZCT (Shi et al., MLMI 2023), a network trained on the input volume itself, and the
interpolation baselines linear, cubic B-spline and windowed sinc. The checks here need only the
volume's grid (:class:`~SlicerMedFuse.superres.slice_geometry.VolumeGrid`), so a Slicer panel
runs them before it exports the volume, and the task runs them again on the image it reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec
from SlicerMedFuse.errors import InputError
from SlicerMedFuse.superres.methods import DEFAULT_DILATIONS, INTERPOLATORS, QUALITIES
from SlicerMedFuse.superres.slice_geometry import SliceGeometry, VolumeGrid, detect_slice_geometry

__all__ = ["METHODS", "SPEC", "check_grids", "target_spacing", "validate_grid"]

#: Every method of the task; the first is the default.
METHODS = ("sr4zct", *INTERPOLATORS)
_METHOD_LABELS = {
    "sr4zct": "SR4ZCT (self-supervised network)",
    "linear": "Linear interpolation",
    "bspline": "Cubic B-spline",
    "sinc": "Windowed sinc",
}
_QUALITY_LABELS = {"fast": "Fast (CPU, minutes)", "faithful": "Faithful (the paper's network, GPU)"}

SPEC = TaskSpec(
    name="superres",
    title="Super-resolution of thick-slice volumes",
    summary="Resamples a thick-slice CT or MRI volume onto thinner slices, keeping the in-plane grid.",
    inputs=(
        InputSpec(
            "volume",
            "Thick-slice volume",
            modalities=("CT", "MR"),
            description="CT or MRI volume with thick slices.",
        ),
    ),
    outputs=(
        OutputSpec("volume", "Super-resolved volume", description="The same anatomy on thinner slices.", primary=True),
    ),
    parameters=(
        ParameterSpec(
            "method",
            "choice",
            METHODS[0],
            "SR4ZCT (self-supervised network) or an interpolation baseline.",
            choices=METHODS,
            choice_labels=tuple(_METHOD_LABELS[method] for method in METHODS),
        ),
        ParameterSpec(
            "target_spacing",
            "float",
            0.0,
            "Output slice spacing; 0 uses the in-plane spacing (isotropic).",
            minimum=0.0,
            maximum=20.0,
            unit="mm",
        ),
        ParameterSpec(
            "factor",
            "float",
            0.0,
            "Slice spacing divided by this factor; overrides target_spacing when > 0.",
            minimum=0.0,
            maximum=16.0,
        ),
        ParameterSpec(
            "slice_thickness",
            "float",
            0.0,
            "Slice thickness r; 0 detects it (DICOM SliceThickness, else the spacing).",
            minimum=0.0,
            maximum=20.0,
            unit="mm",
        ),
        ParameterSpec(
            "quality",
            "choice",
            "fast",
            "SR4ZCT configuration: fast (CPU, minutes) or faithful (the paper's, GPU).",
            choices=QUALITIES,
            choice_labels=tuple(_QUALITY_LABELS[quality] for quality in QUALITIES),
        ),
        ParameterSpec(
            "epochs", "int", 0, "SR4ZCT training epochs; 0 uses the quality's default.", minimum=0, maximum=10000
        ),
        ParameterSpec(
            "seed", "int", 0, "Seed of SR4ZCT's initial weights and training samples.", minimum=0, maximum=2**31 - 1
        ),
    ),
    references=(
        "Shi et al., SR4ZCT: Self-supervised Through-plane Resolution Enhancement for CT Images with Arbitrary Resolution and Overlap, MLMI 2023.",
    ),
)


def target_spacing(slice_spacing: float, in_plane_spacing: float, params: Mapping[str, Any]) -> float:
    """The output slice spacing (mm) the parameters ask for: ``factor``, else ``target_spacing``, else isotropic.

    Args:
        slice_spacing: the input's slice spacing (mm).
        in_plane_spacing: the input's in-plane spacing (mm).
        params: the resolved task parameters.
    """
    if params["factor"] > 0:
        return slice_spacing / params["factor"]
    if params["target_spacing"] > 0:
        return params["target_spacing"]
    return in_plane_spacing


def _validate_sr4zct(grid: VolumeGrid, geometry: SliceGeometry) -> None:
    size, spacing = grid.size, grid.spacing
    in_plane = [index for index in range(3) if index != geometry.axis]
    smallest = min(size[index] for index in in_plane)
    if smallest <= max(DEFAULT_DILATIONS):
        raise InputError(
            f"SR4ZCT needs slices of more than {max(DEFAULT_DILATIONS)} pixels on each side (this one has {smallest}); "
            "use method=linear, bspline or sinc."
        )
    if size[geometry.axis] < 2:
        raise InputError("SR4ZCT needs at least 2 slices; use a volume with more slices.")
    extent = min(size[index] * spacing[index] for index in in_plane)
    if extent < geometry.thickness + geometry.slice_spacing:
        raise InputError(
            f"The slices ({extent:.3g} mm across) are too small to simulate two {geometry.thickness:.3g} mm slices for "
            "SR4ZCT training; use method=linear, bspline or sinc."
        )


def validate_grid(grid: VolumeGrid, params: Mapping[str, Any]) -> None:
    """The input checks on the volume's grid alone (size, spacing, recorded thickness), no voxels needed.

    Args:
        grid: the input volume's grid.
        params: the resolved task parameters.

    Raises:
        InputError: one sentence naming the problem and the fix.
    """
    geometry = detect_slice_geometry(grid, params["slice_thickness"])
    target = target_spacing(geometry.slice_spacing, geometry.in_plane_spacing, params)
    # within the isotropy tolerance the default target (the in-plane spacing) would still be a
    # hair finer than the slices: refuse instead of running a network for nothing
    if geometry.is_isotropic and params["factor"] == 0 and params["target_spacing"] == 0:
        raise InputError(
            f"The volume is already isotropic ({geometry.slice_spacing:.3g} mm slices, "
            f"{geometry.in_plane_spacing:.3g} mm in-plane): there is nothing to super-resolve."
        )
    if target >= geometry.slice_spacing * 0.999:
        raise InputError(
            f"The target spacing {target:.3g} mm is not finer than the slice spacing {geometry.slice_spacing:.3g} mm; "
            "choose a smaller target_spacing or a factor above 1."
        )
    if params["method"] == "sr4zct":
        _validate_sr4zct(grid, geometry)


def check_grids(grids: Mapping[str, VolumeGrid], params: Mapping[str, Any]) -> None:
    """:func:`validate_grid` on the ``volume`` input when its grid is given (see :func:`SlicerMedFuse.specs.precheck_grids`)."""
    if "volume" in grids:
        validate_grid(grids["volume"], params)

"""Task ``superres``: finer slices for a thick-slice CT or MRI volume.

Methods: SR4ZCT (Shi et al., MLMI 2023), a network trained on the input volume itself
(:mod:`SlicerMedFuse.superres.sr4zct`), and the interpolation baselines linear, cubic B-spline and
windowed sinc, all through one code path onto the same output grid.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec
from SlicerMedFuse.errors import InputError
from SlicerMedFuse.superres.interpolation import INTERPOLATORS, fine_slice_reference, interpolate_slices
from SlicerMedFuse.superres.msd import DEFAULT_DILATIONS
from SlicerMedFuse.superres.slice_geometry import SliceGeometry, VolumeGrid, detect_slice_geometry
from SlicerMedFuse.superres.sr4zct import QUALITIES, sr4zct_config, sr4zct_upsample
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

__all__ = ["METHODS", "SuperResolutionTask"]

#: Every method of the task; the first is the default.
METHODS = ("sr4zct", *INTERPOLATORS)


class SuperResolutionTask(Task):
    """Through-plane super-resolution of one volume onto a finer slice grid."""

    spec = TaskSpec(
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
            OutputSpec(
                "volume", "Super-resolved volume", description="The same anatomy on thinner slices.", primary=True
            ),
        ),
        parameters=(
            ParameterSpec(
                "method",
                "choice",
                METHODS[0],
                "SR4ZCT (self-supervised network) or an interpolation baseline.",
                choices=METHODS,
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

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        self.validate_grid(VolumeGrid.of(inputs["volume"]), params)

    def validate_grid(self, grid: VolumeGrid, params: Mapping[str, Any]) -> None:
        """The input checks on the volume's grid alone (size, spacing, recorded thickness), no voxels needed.

        Raises:
            InputError: one sentence naming the problem and the fix.
        """
        geometry = detect_slice_geometry(grid, params["slice_thickness"])
        target = self._target_spacing(geometry.slice_spacing, geometry.in_plane_spacing, params)
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
            self._validate_sr4zct(grid, geometry)

    @staticmethod
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

    @staticmethod
    def _target_spacing(slice_spacing: float, in_plane_spacing: float, params: Mapping[str, Any]) -> float:
        if params["factor"] > 0:
            return slice_spacing / params["factor"]
        if params["target_spacing"] > 0:
            return params["target_spacing"]
        return in_plane_spacing

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        image = inputs["volume"]
        geometry = detect_slice_geometry(image, params["slice_thickness"])
        target = self._target_spacing(geometry.slice_spacing, geometry.in_plane_spacing, params)
        context.progress.update(
            0.02, "planning", f"slice axis {geometry.axis}, {geometry.slice_spacing:.3g} mm -> {target:.3g} mm"
        )
        reference = fine_slice_reference(image, geometry, target)
        report: dict[str, Any] = {
            "method": params["method"],
            "slice_axis": geometry.axis,
            "slice_spacing_mm": geometry.slice_spacing,
            "in_plane_spacing_mm": geometry.in_plane_spacing,
            "slice_thickness_mm": geometry.thickness,
            "slice_thickness_source": geometry.thickness_source,
            "slice_overlap_mm": geometry.overlap,
            "output_spacing_mm": list(reference.GetSpacing()),
            "output_size": list(reference.GetSize()),
        }
        started = time.perf_counter()
        if params["method"] == "sr4zct":
            config = sr4zct_config(params["quality"], params["epochs"])
            result = sr4zct_upsample(
                image,
                reference,
                geometry,
                config,
                device_config=context.device,
                progress=context.progress.span(0.02, 1.0),
                seed=params["seed"],
            )
            output = result.image
            details = result.report()
            report["timings_s"] = details.pop("timings_s")
            report["sr4zct"] = {**details, "seed": params["seed"], "device": context.device.name}
        else:
            output = interpolate_slices(image, reference, params["method"])
            report["timings_s"] = {"interpolate": round(time.perf_counter() - started, 3)}
        context.progress.update(1.0, "done")
        return TaskResult(outputs={"volume": output}, report=report)

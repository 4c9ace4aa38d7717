"""Task ``superres``: finer slices for a thick-slice CT or MRI volume.

Methods today are the interpolation baselines (linear, cubic B-spline, windowed sinc); the SR4ZCT
self-supervised network (Shi et al., MLMI 2023) is added as another method of this same contract.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.superres.interpolation import INTERPOLATORS, fine_slice_reference, interpolate_slices
from SlicerMedFuse.superres.slice_geometry import detect_slice_geometry
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult
from SlicerMedFuse.tasks.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec

__all__ = ["SuperResolutionTask"]


class SuperResolutionTask(Task):
    """Through-plane super-resolution of one volume onto a finer slice grid."""

    spec = TaskSpec(
        name="superres",
        title="Super-resolution of thick-slice volumes",
        summary="Resamples a thick-slice CT or MRI volume onto thinner slices, keeping the in-plane grid.",
        inputs=(
            InputSpec("volume", "Thick-slice volume", modalities=("CT", "MR"), description="CT or MRI volume with thick slices."),
        ),
        outputs=(
            OutputSpec("volume", "Super-resolved volume", description="The same anatomy on thinner slices.", primary=True),
        ),
        parameters=(
            ParameterSpec("method", "choice", "bspline", "How new slices are computed.", choices=INTERPOLATORS),
            ParameterSpec(
                "target_spacing", "float", 0.0, "Output slice spacing; 0 uses the in-plane spacing (isotropic).", minimum=0.0, maximum=20.0, unit="mm"
            ),
            ParameterSpec(
                "factor", "float", 0.0, "Slice spacing divided by this factor; overrides target_spacing when > 0.", minimum=0.0, maximum=16.0
            ),
            ParameterSpec(
                "slice_thickness", "float", 0.0, "Slice thickness r; 0 detects it (DICOM SliceThickness, else the spacing).", minimum=0.0, maximum=20.0, unit="mm"
            ),
        ),
        references=("Shi et al., SR4ZCT: Self-supervised Through-plane Resolution Enhancement for CT Images with Arbitrary Resolution and Overlap, MLMI 2023.",),
    )

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        geometry = detect_slice_geometry(inputs["volume"], params["slice_thickness"])
        target = self._target_spacing(geometry.slice_spacing, geometry.in_plane_spacing, params)
        if target >= geometry.slice_spacing * 0.999:
            if geometry.is_isotropic and params["factor"] == 0 and params["target_spacing"] == 0:
                raise InputError(
                    f"The volume is already isotropic ({geometry.slice_spacing:.3g} mm slices, "
                    f"{geometry.in_plane_spacing:.3g} mm in-plane): there is nothing to super-resolve."
                )
            raise InputError(
                f"The target spacing {target:.3g} mm is not finer than the slice spacing {geometry.slice_spacing:.3g} mm; "
                "choose a smaller target_spacing or a factor above 1."
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
        context.progress.update(0.05, "planning", f"slice axis {geometry.axis}, {geometry.slice_spacing:.3g} mm -> {target:.3g} mm")
        reference = fine_slice_reference(image, geometry, target)
        started = time.perf_counter()
        output = interpolate_slices(image, reference, params["method"])
        seconds = time.perf_counter() - started
        context.progress.update(1.0, "interpolated")
        report = {
            "method": params["method"],
            "slice_axis": geometry.axis,
            "slice_spacing_mm": geometry.slice_spacing,
            "in_plane_spacing_mm": geometry.in_plane_spacing,
            "slice_thickness_mm": geometry.thickness,
            "slice_thickness_source": geometry.thickness_source,
            "slice_overlap_mm": geometry.overlap,
            "output_spacing_mm": list(reference.GetSpacing()),
            "output_size": list(reference.GetSize()),
            "timings_s": {"interpolate": round(seconds, 3)},
        }
        return TaskResult(outputs={"volume": output}, report=report)

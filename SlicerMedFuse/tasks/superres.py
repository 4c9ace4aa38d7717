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

from SlicerMedFuse.specs import superres as superres_spec
from SlicerMedFuse.superres.interpolation import fine_slice_reference, interpolate_slices
from SlicerMedFuse.superres.slice_geometry import VolumeGrid, detect_slice_geometry
from SlicerMedFuse.superres.sr4zct import sr4zct_config, sr4zct_upsample
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

__all__ = ["SuperResolutionTask"]


class SuperResolutionTask(Task):
    """Through-plane super-resolution of one volume onto a finer slice grid."""

    spec = superres_spec.SPEC

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        self.validate_grid(VolumeGrid.of(inputs["volume"]), params)

    def validate_grid(self, grid: VolumeGrid, params: Mapping[str, Any]) -> None:
        """The checks on the volume's grid alone: :func:`SlicerMedFuse.specs.superres.validate_grid`."""
        superres_spec.validate_grid(grid, params)

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        image = inputs["volume"]
        geometry = detect_slice_geometry(image, params["slice_thickness"])
        target = superres_spec.target_spacing(geometry.slice_spacing, geometry.in_plane_spacing, params)
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

"""Task ``registration``: training-free deformable registration of any two 3D images (same or different contrast).

The pipeline (:func:`SlicerMedFuse.registration.register`) aligns the moving image to the fixed one
by centre of mass / moments, rigid and affine stages, then optimises a dense displacement field
on a multi-resolution pyramid (neural-instance-optimisation schedule, LNCC or MIND-SSC, implicitly
solved regularisers, optional diffeomorphic mode). Outputs lie on the fixed grid:

* ``displacement``: the ITK displacement field (LPS mm, fixed point -> moving point) holding the
  whole transform; Slicer loads it as a grid transform, ANTs/SimpleITK apply it as is;
* ``warped``: the moving image resampled onto the fixed grid (float32, linear);
* ``warped_labels``: the moving label map carried along (label-aware or nearest); it needs the
  ``moving_labels`` input (:meth:`RegistrationTask.check_outputs` says so before anything runs).

The same transform can also be written as an ITK ``.h5`` transform file (parameter
``transform_file``): a ``DisplacementFieldTransform`` that ``sitk.ReadTransform``, ANTs and Slicer
read, moving every point exactly as the ``.nii.gz`` field does. It is staged in the job's scratch
folder and committed by :func:`~SlicerMedFuse.api.run_task` together with the images (``TaskResult.files``).

Voxel budget: a fixed image with more voxels than the preset's ``max_voxels`` (20 million in the
built-in presets, e.g. 512 x 512 x 76) is registered on a coarser working grid of at most that
many voxels; the outputs are still on the full fixed grid, and the report's ``warnings`` and the
progress log say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.registration.presets import PARAMETERS, load_preset, settings_from_parameters
from SlicerMedFuse.specs import registration as registration_spec
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult

__all__ = ["RegistrationTask"]

#: Extensions of the optional ITK transform file (HDF5; ITK's text formats cannot hold a dense field).
TRANSFORM_FILE_EXTENSIONS = (".h5", ".hdf5")
#: Outputs that need an optional input: output role -> input role.
_OUTPUT_NEEDS_INPUT = {"warped_labels": "moving_labels"}


class RegistrationTask(Task):
    """Deformable registration of a moving image (and its labels) onto a fixed image."""

    spec = registration_spec.SPEC

    @staticmethod
    def _parameters(params: Mapping[str, Any]) -> dict[str, Any]:
        values = load_preset(params["preset"])
        values.update({name: params[name] for name in PARAMETERS if params.get(name) is not None})
        return values

    @staticmethod
    def check_outputs(output_roles: Iterable[str], input_roles: Iterable[str]) -> None:
        """Raise :class:`UsageError` when an output is requested without the input it is made from.

        Args:
            output_roles: the outputs the caller will write (e.g. ``{"displacement", "warped_labels"}``).
            input_roles: the inputs the caller gives.
        """
        given = set(input_roles)
        for output, needed in _OUTPUT_NEEDS_INPUT.items():
            if output in set(output_roles) and needed not in given:
                raise UsageError(
                    f"Output '{output}' needs the input '{needed}' (a label map of the moving image); "
                    f"give --input {needed}=PATH or leave the output out."
                )

    @staticmethod
    def _check_transform_file(path: str | None) -> None:
        if not path:
            return
        target = Path(path)
        if not target.name.lower().endswith(TRANSFORM_FILE_EXTENSIONS):
            raise UsageError(
                f"The transform file '{path}' must end in {' or '.join(TRANSFORM_FILE_EXTENSIONS)} "
                "(an ITK HDF5 transform); write the field as .nii.gz through the displacement output instead."
            )
        if not target.parent.is_dir():
            raise UsageError(f"The folder for the transform file does not exist: {target.parent}; create it first.")

    def validate_inputs(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any]) -> None:
        settings_from_parameters(self._parameters(params))  # raises UsageError naming a bad parameter
        self._check_transform_file(params.get("transform_file"))
        fixed, moving = inputs["fixed"], inputs["moving"]
        if fixed.GetDimension() != moving.GetDimension():
            raise InputError(
                f"The fixed image is {fixed.GetDimension()}D and the moving image {moving.GetDimension()}D; give two 3D volumes."
            )
        if params.get("initial_transform") and not Path(params["initial_transform"]).is_file():
            raise UsageError(
                f"The initial transform file '{params['initial_transform']}' does not exist; check the path."
            )

    @staticmethod
    def _initial_transform(path: str | None) -> sitk.Transform | None:
        if not path:
            return None
        try:
            return sitk.ReadTransform(str(path))
        except RuntimeError:
            raise InputError(
                f"Cannot read the initial transform '{path}'; give an ITK transform file (.tfm, .txt, .h5, .mat)."
            ) from None

    def run(self, inputs: Mapping[str, sitk.Image], params: Mapping[str, Any], context: TaskContext) -> TaskResult:
        # torch-heavy modules load here, not when tasks are listed
        from functools import partial

        from SlicerMedFuse.geometry import resample_to_reference
        from SlicerMedFuse.registration.learned import register_with_model
        from SlicerMedFuse.registration.pipeline import register
        from SlicerMedFuse.registration.transforms import resample_labels

        values = self._parameters(params)
        device = context.device.torch_device()
        progress = context.progress
        # with a model bundle (run_task(model=...), medfuse run --model) its prediction starts the instance optimisation
        register_pair = register if context.model is None else partial(register_with_model, model=context.model)
        try:
            result = register_pair(
                inputs["fixed"],
                inputs["moving"],
                values,
                fixed_mask=inputs.get("fixed_mask"),
                moving_mask=inputs.get("moving_mask"),
                initial_transform=self._initial_transform(params.get("initial_transform")),
                device=device,
                progress=progress.span(0.0, 0.9),
            )
        except ValueError as error:  # e.g. a non-linear initial transform
            raise InputError(f"Registration cannot start: {error}.") from None
        outputs: dict[str, sitk.Image] = {"displacement": result.displacement}
        files: dict[Path, Path] = {}
        transform = result.transform()
        progress.update(0.92, "warping")
        outputs["warped"] = resample_to_reference(
            inputs["moving"], inputs["fixed"], interpolation="linear", transform=transform
        )
        if "moving_labels" in inputs:
            method = "onehot" if params["label_interpolation"] == "label" else "nearest"
            outputs["warped_labels"] = resample_labels(
                inputs["moving_labels"], result.displacement, method=method, device=device
            )
        report = dict(result.report)  # the coarse-grid warning is logged by the pipeline; run_task reports it
        if params.get("transform_file"):
            progress.update(0.97, "writing the .h5 transform")
            # staged in the job's scratch folder: run_task moves it into place with the other outputs, all or nothing
            target = Path(params["transform_file"])
            staged = context.work_dir / target.name
            sitk.WriteTransform(transform, str(staged))
            files[target] = staged
            report["transform_file"] = str(target)
        progress.update(1.0, "done")
        report["preset"] = str(params["preset"])
        report["settings"] = {name: (list(v) if isinstance(v, tuple) else v) for name, v in values.items()}
        return TaskResult(outputs=outputs, report=report, files=files)

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
read, moving every point exactly as the ``.nii.gz`` field does.

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
from SlicerMedFuse.io import atomic_path
from SlicerMedFuse.registration.presets import PARAMETERS, PRESETS, load_preset, settings_from_parameters
from SlicerMedFuse.tasks.base import Task, TaskContext, TaskResult
from SlicerMedFuse.tasks.contract import InputSpec, OutputSpec, ParameterSpec, TaskSpec

__all__ = ["RegistrationTask"]

_LABEL_METHODS = ("label", "nearest")
#: Extensions of the optional ITK transform file (HDF5; ITK's text formats cannot hold a dense field).
TRANSFORM_FILE_EXTENSIONS = (".h5", ".hdf5")
#: Outputs that need an optional input: output role -> input role.
_OUTPUT_NEEDS_INPUT = {"warped_labels": "moving_labels"}


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
            )
        )
    return tuple(specs)


class RegistrationTask(Task):
    """Deformable registration of a moving image (and its labels) onto a fixed image."""

    spec = TaskSpec(
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
                choices=_LABEL_METHODS,
            ),
            ParameterSpec(
                "initial_transform",
                "str",
                None,
                "Optional linear transform file (.tfm/.h5/.txt, fixed -> moving) replacing the initialisation.",
            ),
            ParameterSpec(
                "transform_file",
                "str",
                None,
                "Also write the whole transform here as an ITK .h5 transform file (a DisplacementFieldTransform, "
                "the same mapping as the displacement output).",
            ),
            *_override_specs(),
        ),
        references=(
            "Mok et al., Deformable Medical Image Registration Under Distribution Shifts with Neural Instance Optimization, MLMI 2023.",
            "Ehrhardt & Handels, Implicitly Solved Regularization for Learning-Based Image Registration, MLMI 2023.",
            "Heinrich et al., Towards Realtime Multimodal Fusion for Image-Guided Interventions Using Self-similarities (MIND-SSC), MICCAI 2013.",
        ),
    )

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
                progress=lambda fraction, stage: progress.update(0.9 * fraction, stage),
            )
        except ValueError as error:  # e.g. a non-linear initial transform
            raise InputError(f"Registration cannot start: {error}.") from None
        outputs: dict[str, sitk.Image] = {"displacement": result.displacement}
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
            # written last, when nothing in the registration can fail any more; atomically, so never half a file
            with atomic_path(params["transform_file"]) as staged:
                sitk.WriteTransform(transform, str(staged))
            report["transform_file"] = str(params["transform_file"])
        progress.update(1.0, "done")
        report["preset"] = str(params["preset"])
        report["settings"] = {name: (list(v) if isinstance(v, tuple) else v) for name, v in values.items()}
        return TaskResult(outputs=outputs, report=report)

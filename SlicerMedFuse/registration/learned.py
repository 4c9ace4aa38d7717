"""Test-time instance optimisation starting from a learned TM-DCA model.

:func:`register_with_model` is :func:`~SlicerMedFuse.registration.pipeline.register` with a better
start for the deformable stage: the learned network's field refined by instance optimisation, the
"network + IO" baseline of Mok et al. (MLMI 2023, Table 1, LapIRN +IO). It is not their NIO,
which optimises the network's weights; that needs a GPU for every pair. Steps:

1. the pipeline's linear stage (centre of mass / moments, rigid, affine) on the normalised images;
2. both images resampled onto the network grid: the fixed image's box in the training data's
   orientation (the network is not rotation invariant), with the bundle's ``input_shape_zyx``
   voxels; the moving image through the linear transform;
3. the network's displacement (voxels of that grid) turned into LPS mm, resampled onto the fixed
   grid and composed with the linear map into one whole-transform field
   (:func:`predict_displacement`), the pipeline's output convention;
4. :func:`register` with ``initial_transform`` = the linear map and ``initial_displacement`` = that
   field: its linear stage refines the map and its instance optimisation refines the field.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.geometry import ImageGeometry, resample_to_reference
from SlicerMedFuse.models import LoadedBundle, ModelStore, load_bundle
from SlicerMedFuse.progress import Progress

# the pipeline's voxel-field composition, shared rather than copied
from SlicerMedFuse.registration.pipeline import (
    RegistrationResult,
    _total_displacement,
    normalize_intensity,
    register,
)
from SlicerMedFuse.registration.presets import RegistrationSettings, load_preset, settings_from_parameters
from SlicerMedFuse.registration.transforms import (
    displacement_field_image,
    displacement_to_physical,
    physical_to_displacement,
)

__all__ = ["load_registration_model", "network_geometry", "predict_displacement", "register_with_model"]


def load_registration_model(model: str | os.PathLike[str], device: torch.device | str = "cpu") -> LoadedBundle:
    """Load a registration bundle (folder, ``.zip`` or installed id).

    Raises:
        ModelError: not a bundle, not installed, corrupt, or made for another task.
    """
    # a bare word is an installed id, anything else a path (the task context hands over ids as Path objects)
    bundle = load_bundle(ModelStore().resolve(os.fspath(model)), device=device)
    manifest = bundle.manifest
    if manifest.task != "registration" or "input_shape_zyx" not in manifest.preprocessing:
        raise ModelError(
            f"Model '{manifest.name}' is for task '{manifest.task}', not a learned registration model; "
            "give a bundle written by 'medfuse train registration'."
        )
    return bundle


def network_geometry(fixed: sitk.Image, shape_zyx: tuple[int, int, int], orientation: str) -> ImageGeometry:
    """The network grid: the fixed image's box, axes in ``orientation`` (e.g. ``"LIA"``), ``shape_zyx`` voxels.

    Reorienting only permutes and flips axes (no resampling); the voxel centres then spread evenly
    over the same physical extent.
    """
    # a blank image with the fixed geometry: DICOMOrient permutes and flips its axes without touching the data
    blank = sitk.Image(fixed.GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(fixed)
    oriented = ImageGeometry.from_image(sitk.DICOMOrient(blank, orientation))
    size = np.asarray(shape_zyx[::-1], dtype=float)
    spacing = np.asarray(oriented.size) * np.asarray(oriented.spacing) / size
    shift = oriented.direction_matrix @ (0.5 * (spacing - np.asarray(oriented.spacing)))
    return ImageGeometry(
        tuple(int(n) for n in size), tuple(spacing), tuple(np.asarray(oriented.origin) + shift), oriented.direction
    )


def _to_network_grid(image: sitk.Image, grid: ImageGeometry, transform: sitk.Transform | None = None) -> sitk.Image:
    """Resample onto the (usually coarser) network grid, Gaussian-smoothing each axis finer than it first.

    Training maps volumes to the network grid by area averaging; this is its anti-aliased
    counterpart for any placement. Axes already as coarse as the grid are left unsmoothed.
    """
    target = np.asarray(grid.spacing)  # per index axis of the grid; use the finest as the scale
    variance = [max(float(target.min()) ** 2 - s**2, 0.0) / 4.0 for s in image.GetSpacing()]
    if any(v > 0 for v in variance):
        image = sitk.DiscreteGaussian(sitk.Cast(image, sitk.sitkFloat32), variance, 32, 0.01, True)
    return resample_to_reference(image, grid, interpolation="linear", transform=transform, default_value=0.0)


def predict_displacement(
    bundle: LoadedBundle,
    fixed: sitk.Image,
    moving: sitk.Image,
    linear: sitk.Transform,
    *,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    device: torch.device | str = "cpu",
) -> sitk.Image:
    """The learned model's whole-transform field on the fixed grid.

    Args:
        bundle: a loaded registration bundle (:func:`load_registration_model`).
        fixed, moving: 3D scalar images.
        linear: fixed -> moving linear transform (e.g. the pipeline's linear stage).
        fixed_mask, moving_mask: optional masks for the intensity normalisation.
        device: torch device for the network.

    Returns:
        ``sitkVectorFloat64`` displacement on the fixed grid, LPS mm, fixed point -> moving point
        (``M (x + e(x)) + b - x`` with the network's deformation ``e``).
    """
    preprocessing = bundle.manifest.preprocessing
    shape = tuple(int(n) for n in preprocessing["input_shape_zyx"])
    grid = network_geometry(fixed, shape, str(preprocessing.get("orientation", "LPS")))
    fixed_net = _to_network_grid(normalize_intensity(fixed, fixed_mask), grid)
    moving_net = _to_network_grid(normalize_intensity(moving, moving_mask), grid, linear)
    as_tensor = lambda image: torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))[None, None]  # noqa: E731
    network = bundle.network.to(device)
    with torch.no_grad():
        u = network(as_tensor(fixed_net).to(device), as_tensor(moving_net).to(device))
    deformation = displacement_field_image(displacement_to_physical(u, grid), grid)  # LPS mm on the network grid
    fixed_grid = ImageGeometry.from_image(fixed)
    on_fixed = resample_to_reference(deformation, fixed_grid, default_value=0.0)
    u_fixed = torch.from_numpy(physical_to_displacement(on_fixed).astype(np.float32))[None]
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(linear.GetMatrix())
    affine.SetTranslation(linear.GetTranslation())
    affine.SetCenter(linear.GetCenter())
    return displacement_field_image(_total_displacement(u_fixed, affine, fixed_grid), fixed_grid)


def register_with_model(
    fixed: sitk.Image,
    moving: sitk.Image,
    parameters: Mapping[str, Any] | RegistrationSettings | None = None,
    *,
    model: str | os.PathLike[str] | LoadedBundle,
    fixed_mask: sitk.Image | None = None,
    moving_mask: sitk.Image | None = None,
    initial_transform: sitk.Transform | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> RegistrationResult:
    """Register with the learned model's prediction as the start of instance optimisation.

    Args:
        fixed, moving: 3D scalar images.
        parameters: as :func:`register` (None: the ``fast`` preset).
        model: a loaded bundle, or a bundle folder / ``.zip`` / installed id.
        fixed_mask, moving_mask, initial_transform, device, progress: as :func:`register`.

    Returns:
        The :class:`RegistrationResult`; its report gains ``learned_initialization`` (model,
        network grid, seconds).
    """
    from SlicerMedFuse.registration.affine import register_affine

    started = time.perf_counter()
    settings = (
        parameters
        if isinstance(parameters, RegistrationSettings)
        else settings_from_parameters(parameters if parameters is not None else load_preset("fast"))
    )
    bundle = model if isinstance(model, LoadedBundle) else load_registration_model(model, device)
    linear = register_affine(
        normalize_intensity(fixed, fixed_mask),
        normalize_intensity(moving, moving_mask),
        settings.linear,
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        initial=initial_transform,
        device=device,
    ).transform
    initial = predict_displacement(
        bundle, fixed, moving, linear, fixed_mask=fixed_mask, moving_mask=moving_mask, device=device
    )
    seconds = time.perf_counter() - started
    result = register(
        fixed,
        moving,
        settings,
        fixed_mask=fixed_mask,
        moving_mask=moving_mask,
        initial_transform=linear,
        initial_displacement=initial,
        device=device,
        progress=progress,
    )
    result.report["learned_initialization"] = {
        "model": bundle.manifest.name,
        "network_grid_zyx": list(bundle.manifest.preprocessing["input_shape_zyx"]),
        "seconds": round(seconds, 3),
    }
    return result

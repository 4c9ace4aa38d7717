"""Dense displacement fields in physical space: LPS-mm fields, ITK transforms, label resampling.

The voxel-unit operations (warping, composition, scaling and squaring) live in
:mod:`SlicerMedFuse.nets.warping`, below both the registration networks and this pipeline.

Conventions: voxel-unit displacements and tensors as in :mod:`SlicerMedFuse.nets.warping`
(``(B, 3, D, H, W)``, channel c along index axis c of ``(i, j, k)``, ``align_corners=False``), and:

* Physical fields are ``(D, H, W, 3)`` numpy arrays or SimpleITK vector images in LPS millimetres,
  what ``sitk.DisplacementFieldTransform`` expects: it maps fixed points to moving points.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.geometry import ImageGeometry

__all__ = [
    "displacement_field_image",
    "displacement_to_physical",
    "displacement_transform",
    "physical_to_displacement",
    "resample_labels",
    "sampling_grid",
]


def displacement_to_physical(u: np.ndarray | torch.Tensor, geometry: ImageGeometry) -> np.ndarray:
    """Voxel-unit field on ``geometry``'s grid -> LPS millimetres.

    Args:
        u: ``(3, D, H, W)`` or ``(1, 3, D, H, W)`` displacement in voxel units of ``geometry``.
        geometry: the grid (spacing and direction; 3D).

    Returns:
        ``(D, H, W, 3)`` float64 array of LPS displacements in mm (``direction @ diag(spacing) @ u``).
    """
    array = u.detach().cpu().numpy() if isinstance(u, torch.Tensor) else np.asarray(u)
    if array.ndim == 5:
        if array.shape[0] != 1:
            raise ValueError(f"expected a batch of one field, got {array.shape[0]}")
        array = array[0]
    if array.shape[0] != 3 or tuple(array.shape[1:]) != tuple(geometry.size[::-1]):
        raise ValueError(f"field of shape {array.shape} does not match grid size {geometry.size} (i, j, k)")
    matrix = geometry.direction_matrix @ np.diag(geometry.spacing)  # voxel (i, j, k) -> LPS mm
    flat = array.reshape(3, -1).astype(np.float64, copy=False)
    return (matrix @ flat).T.reshape(*array.shape[1:], 3)


def physical_to_displacement(field: np.ndarray | sitk.Image, geometry: ImageGeometry | None = None) -> np.ndarray:
    """LPS-mm field -> ``(3, D, H, W)`` float64 field in voxel units of its grid (inverse of :func:`displacement_to_physical`).

    Args:
        field: a SimpleITK vector image (its own geometry is used) or a ``(D, H, W, 3)`` array with ``geometry``.
        geometry: the grid of an array ``field``.
    """
    if isinstance(field, sitk.Image):
        geometry = ImageGeometry.from_image(field)
        array = sitk.GetArrayViewFromImage(field)
    elif geometry is None:
        raise ValueError("geometry is needed for an array field")
    else:
        array = np.asarray(field)
    inverse = np.linalg.inv(geometry.direction_matrix @ np.diag(geometry.spacing))
    flat = array.reshape(-1, 3).astype(np.float64, copy=False)
    return (inverse @ flat.T).reshape(3, *array.shape[:3])


def displacement_field_image(field_lps: np.ndarray, geometry: ImageGeometry) -> sitk.Image:
    """A ``sitkVectorFloat64`` image on ``geometry`` holding an LPS-mm field ``(D, H, W, 3)``.

    This is the ITK displacement-field layout: NIfTI/NRRD files of it are read as displacement
    transforms by ITK, ANTs and 3D Slicer.
    """
    array = np.asarray(field_lps, dtype=np.float64)
    if array.shape != (*geometry.size[::-1], 3):
        raise ValueError(f"field of shape {array.shape} does not match grid size {geometry.size} (i, j, k) x 3")
    image = sitk.GetImageFromArray(array, isVector=True)
    return geometry.apply_to(image)


def displacement_transform(field: sitk.Image) -> sitk.DisplacementFieldTransform:
    """A ``sitk.DisplacementFieldTransform`` (fixed point -> moving point) from a displacement image.

    The image is copied (the transform takes ownership of its input) and cast to vector float64.
    Write it with ``sitk.WriteTransform(transform, "field.h5")`` for an ITK ``.h5`` transform file.
    """
    if field.GetNumberOfComponentsPerPixel() != field.GetDimension():
        raise ValueError(
            f"a {field.GetDimension()}D displacement field needs {field.GetDimension()} components per voxel"
        )
    copy = sitk.Cast(field, sitk.sitkVectorFloat64)
    return sitk.DisplacementFieldTransform(copy)


def sampling_grid(
    displacement: sitk.Image, moving: ImageGeometry, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """grid_sample coordinates in the *moving* image of every fixed voxel moved by a physical field.

    Args:
        displacement: LPS-mm displacement image on the fixed grid (fixed point -> moving point).
        moving: the moving image's grid.
        device: where the grid is built.

    Returns:
        ``(1, D, H, W, 3)`` float32 normalised ``(x, y, z)`` coordinates (``align_corners=False``)
        for sampling a ``(1, C, d, h, w)`` tensor of the moving image.
    """
    fixed = ImageGeometry.from_image(displacement)
    index_to_lps = fixed.ijk_to_lps()
    lps_to_moving = np.linalg.inv(moving.ijk_to_lps())
    # moving index = A (fixed_index_to_lps(ijk) + d) + a, folded into per-axis steps (float64 constants)
    step = lps_to_moving[:3, :3] @ index_to_lps[:3, :3]
    origin = lps_to_moving[:3, :3] @ index_to_lps[:3, 3] + lps_to_moving[:3, 3]
    size = torch.tensor(moving.size, dtype=torch.float64)
    scale = (1.0 / size).to(torch.float32).to(device)  # normalised = (2 idx + 1) / n - 1
    field = torch.from_numpy(sitk.GetArrayFromImage(displacement).astype(np.float32)).to(device)  # (D, H, W, 3) LPS
    grid = field @ torch.as_tensor(lps_to_moving[:3, :3].T, dtype=torch.float32, device=device)
    constant = torch.as_tensor(origin, dtype=torch.float32, device=device)
    grid += constant
    for axis, n in enumerate(fixed.size):
        shape = [1, 1, 1, 3]
        shape[2 - axis] = n
        ramp = torch.arange(n, dtype=torch.float32, device=device)[:, None] * torch.as_tensor(
            step[:, axis], dtype=torch.float32, device=device
        )
        grid += ramp.reshape(shape)
    grid = (2.0 * grid + 1.0) * scale - 1.0
    return grid.unsqueeze(0)


def resample_labels(
    labels: sitk.Image,
    displacement: sitk.Image,
    *,
    method: str = "onehot",
    chunk: int = 8,
    device: torch.device | str = "cpu",
) -> sitk.Image:
    """Warp a moving label map onto the fixed grid through a physical displacement field.

    Args:
        labels: integer label map on the moving grid.
        displacement: LPS-mm displacement image on the fixed grid (fixed point -> moving point).
        method: ``"nearest"`` (SimpleITK nearest neighbour) or ``"onehot"`` (label-aware: each
            label's indicator is interpolated trilinearly and the largest wins; ``chunk`` labels per pass).
        chunk: labels per pass for ``"onehot"``.
        device: torch device for ``"onehot"``.

    Returns:
        Labels on the fixed grid with the input pixel type; 0 outside the moving image.
    """
    if method == "nearest":
        transform = displacement_transform(displacement)
        grid = ImageGeometry.from_image(displacement)
        resampler = sitk.ResampleImageFilter()
        resampler.SetSize(grid.size)
        resampler.SetOutputSpacing(grid.spacing)
        resampler.SetOutputOrigin(grid.origin)
        resampler.SetOutputDirection(grid.direction)
        resampler.SetInterpolator(sitk.sitkNearestNeighbor)
        resampler.SetTransform(transform)
        resampler.SetDefaultPixelValue(0)
        return resampler.Execute(labels)
    if method != "onehot":
        raise ValueError(f"method must be 'nearest' or 'onehot', got {method!r}")
    array = sitk.GetArrayFromImage(labels)
    values = np.unique(array)
    grid = sampling_grid(displacement, ImageGeometry.from_image(labels), device=device)
    source = torch.from_numpy(array.astype(np.int64)).to(device)[None, None]
    best = torch.zeros((1, 1, *grid.shape[1:4]), device=device)
    result = torch.zeros((1, 1, *grid.shape[1:4]), dtype=torch.int64, device=device)
    for start in range(0, len(values), chunk):
        group = torch.as_tensor(values[start : start + chunk].astype(np.int64), device=device)
        indicators = (source == group.view(1, -1, 1, 1, 1)).float()
        weights = F.grid_sample(indicators, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        top, where = weights.max(dim=1, keepdim=True)
        better = top > best
        best = torch.where(better, top, best)
        result = torch.where(better, group[where], result)
    out = sitk.GetImageFromArray(result[0, 0].cpu().numpy().astype(array.dtype))
    return ImageGeometry.from_image(displacement).apply_to(out)

"""An initial displacement for the deformable stage, from a physical field (e.g. a learned model's prediction).

The pipeline composes its result as ``d(x) = M (x + P u(x)) + b - x`` (:mod:`.pipeline`): the
deformable field ``u`` (voxels of the working grid, ``P`` its voxel-to-LPS matrix) acts before the
linear map ``y = M z + b``. Given a whole-transform field ``d`` in LPS mm on any grid (fixed point
-> moving point, the pipeline's own output format), the deformable part that reproduces it with a
given linear map is ``P u(x) = M^-1 (x + d(x) - b) - x``, evaluated at the working grid's voxels.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch

from SlicerMedFuse.errors import InputError
from SlicerMedFuse.geometry import ImageGeometry, resample_to_reference

__all__ = ["deformable_from_total"]


def deformable_from_total(
    displacement: sitk.Image, linear: sitk.AffineTransform, grid: ImageGeometry, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The deformable field ``u`` on ``grid`` whose composition with ``linear`` equals ``displacement``.

    Args:
        displacement: 3D vector image (3 components), LPS mm, fixed point -> moving point, the
            whole transform; resampled linearly onto ``grid`` (0 outside it).
        linear: the linear transform (fixed -> moving) the pipeline found.
        grid: the working grid.
        device: torch device of the result.

    Returns:
        ``(1, 3, D, H, W)`` float32 displacement in voxels of ``grid``, channels along ``(i, j, k)``.

    Raises:
        InputError: ``displacement`` is not a 3D field of 3-vectors.
    """
    if displacement.GetDimension() != 3 or displacement.GetNumberOfComponentsPerPixel() != 3:
        raise InputError(
            "The initial displacement must be a 3D field with 3 components per voxel (LPS mm, fixed -> moving), "
            "like a registration result's displacement."
        )
    field = resample_to_reference(sitk.Cast(displacement, sitk.sitkVectorFloat64), grid, default_value=0.0)
    d = sitk.GetArrayFromImage(field).reshape(-1, 3).T  # (3, N) LPS mm at the grid's voxels (k, j, i order)
    index_to_lps = grid.ijk_to_lps()
    points = np.broadcast_to(index_to_lps[:3, 3].reshape(3, 1, 1, 1), (3, *grid.size[::-1])).copy()
    for axis, n in enumerate(grid.size):  # axis i, j, k varies along array dimension 3, 2, 1
        ramp = [1, 1, 1]
        ramp[2 - axis] = n
        points += index_to_lps[:3, axis].reshape(3, 1, 1, 1) * np.arange(n, dtype=np.float64).reshape(ramp)
    points = points.reshape(3, -1)
    matrix = np.asarray(linear.GetMatrix()).reshape(3, 3)
    centre, translation = np.asarray(linear.GetCenter()), np.asarray(linear.GetTranslation())
    offset = centre + translation - matrix @ centre
    d += points - offset[:, None]  # in place: a full-resolution field is ~165 MB per copy
    before_linear = np.linalg.solve(matrix, d)
    before_linear -= points
    u = np.linalg.solve(index_to_lps[:3, :3], before_linear)
    return torch.from_numpy(u.reshape(3, *grid.size[::-1]).astype(np.float32))[None].to(device)

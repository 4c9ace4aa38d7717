"""SR4ZCT's evaluation protocol: simulate thick slices from a fine volume, score restorations.

The paper (Sect. 3) takes fine-slice CT, simulates thick slices with F-down along z, restores
them and reports PSNR and SSIM on coronal and sagittal slices. :func:`simulate_thick_slices`
returns the thick volume with correct physical geometry (slice centres where the slabs are) and
the grid of fine slices whose centres lie between the first and last thick slice, the region
every method interpolates (no extrapolation), which is where :func:`score_volume` compares.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from SlicerMedFuse.superres.degradation import DEFAULT_POINTS, f_down, slab_centres
from SlicerMedFuse.superres.slice_geometry import DICOM_SLICE_THICKNESS

__all__ = ["ThickSliceSimulation", "psnr", "score_volume", "simulate_thick_slices", "ssim"]


@dataclasses.dataclass
class ThickSliceSimulation:
    """A simulated thick-slice acquisition of a fine volume.

    Attributes:
        thick: the thick-slice volume (float32, spacing d = r - o along ``axis``, the DICOM
            SliceThickness tag set to r so :func:`detect_slice_geometry` finds it).
        truth: the fine volume restricted to slices between the first and last thick slice centre.
        axis: the slice axis (SimpleITK index order).
        thickness: r (mm).
        overlap: o (mm).
    """

    thick: sitk.Image
    truth: sitk.Image
    axis: int
    thickness: float
    overlap: float


def simulate_thick_slices(
    image: sitk.Image, thickness: float, overlap: float, axis: int = 2, points: int = DEFAULT_POINTS
) -> ThickSliceSimulation:
    """Apply F-down along ``axis`` of a fine volume (SR4ZCT's simulation of thick slices).

    Args:
        image: fine volume (any scalar pixel type); its spacing along ``axis`` is the pixel size.
        thickness: simulated slice thickness r (mm).
        overlap: simulated overlap o (mm); slices are r - o apart.
        axis: slice axis in SimpleITK index order (2 = z).
        points: samples averaged per slab.

    Returns:
        The thick volume and the matching ground truth (see :class:`ThickSliceSimulation`).
    """
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    dim = 2 - axis
    pixel = image.GetSpacing()[axis]
    count = array.shape[dim]
    thick = f_down(torch.from_numpy(array), dim, pixel, thickness, overlap, points).numpy()
    centres = slab_centres(count * pixel, thickness, overlap).numpy()
    first_index = centres[0] / pixel - 0.5  # continuous fine index of the first slab centre
    origin = image.TransformContinuousIndexToPhysicalPoint(
        [first_index if index == axis else 0.0 for index in range(3)]
    )
    thick_image = sitk.GetImageFromArray(thick)
    spacing = list(image.GetSpacing())
    spacing[axis] = thickness - overlap
    thick_image.SetSpacing(spacing)
    thick_image.SetOrigin(origin)
    thick_image.SetDirection(image.GetDirection())
    thick_image.SetMetaData(DICOM_SLICE_THICKNESS, f"{thickness:g}")
    low = int(np.ceil(first_index - 1e-6))
    high = int(np.floor(centres[-1] / pixel - 0.5 + 1e-6))
    start = [low if index == axis else 0 for index in range(3)]
    size = [high - low + 1 if index == axis else image.GetSize()[index] for index in range(3)]
    truth = sitk.RegionOfInterest(image, size, start)
    return ThickSliceSimulation(thick_image, truth, axis, float(thickness), float(overlap))


def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(range^2 / MSE), optionally inside ``mask``."""
    difference = estimate.astype(np.float64) - truth.astype(np.float64)
    if mask is not None:
        difference = difference[mask]
    mse = float(np.mean(difference**2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def ssim(estimate: np.ndarray, truth: np.ndarray, data_range: float, window: int = 7) -> float:
    """Mean structural similarity of two 2D images (Wang et al. 2004).

    Same conventions as ``skimage.metrics.structural_similarity`` defaults: a uniform
    ``window`` x ``window`` window, K1 = 0.01, K2 = 0.03, sample covariances, the mean taken
    over windows that lie fully inside the image.
    """
    x = torch.from_numpy(np.asarray(estimate, dtype=np.float64))[None, None]
    y = torch.from_numpy(np.asarray(truth, dtype=np.float64))[None, None]
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images must be at least {window} pixels on each side, got {tuple(x.shape[-2:])}")

    def mean(image: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(image, window, stride=1)

    samples = window * window
    correction = samples / (samples - 1)
    mu_x, mu_y = mean(x), mean(y)
    var_x = correction * (mean(x * x) - mu_x**2)
    var_y = correction * (mean(y * y) - mu_y**2)
    cov = correction * (mean(x * y) - mu_x * mu_y)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(index.mean())


def score_volume(
    estimate: np.ndarray, truth: np.ndarray, axis_dim: int = 0, mask: np.ndarray | None = None
) -> dict[str, float]:
    """PSNR and SSIM of a restored volume, as in SR4ZCT's tables and the issue's calibration.

    The data range is the truth volume's (max - min). Central coronal and sagittal slices are the
    middle index of the two in-plane dimensions (numpy order, slice axis ``axis_dim``).

    Args:
        estimate: restored volume, numpy order (z, y, x).
        truth: reference volume, same shape.
        axis_dim: numpy dimension of the slice axis.
        mask: optional boolean mask (e.g. the head) for an extra masked whole-volume PSNR.

    Returns:
        ``psnr_coronal``, ``psnr_sagittal``, ``ssim_coronal``, ``ssim_sagittal``, ``psnr_volume``
        and, with a mask, ``psnr_mask``.
    """
    if estimate.shape != truth.shape:
        raise ValueError(f"shapes differ: {estimate.shape} vs {truth.shape}")
    data_range = float(truth.max() - truth.min())
    moved_estimate, moved_truth = np.moveaxis(estimate, axis_dim, 0), np.moveaxis(truth, axis_dim, 0)
    _, rows, cols = moved_truth.shape
    coronal = (moved_estimate[:, rows // 2, :], moved_truth[:, rows // 2, :])
    sagittal = (moved_estimate[:, :, cols // 2], moved_truth[:, :, cols // 2])
    scores = {
        "psnr_coronal": psnr(*coronal, data_range),
        "psnr_sagittal": psnr(*sagittal, data_range),
        "ssim_coronal": ssim(*coronal, data_range),
        "ssim_sagittal": ssim(*sagittal, data_range),
        "psnr_volume": psnr(estimate, truth, data_range),
    }
    if mask is not None:
        scores["psnr_mask"] = psnr(estimate, truth, data_range, mask)
    return scores

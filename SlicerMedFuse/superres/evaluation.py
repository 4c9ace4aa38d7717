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
from monai.metrics import PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs

from SlicerMedFuse.superres.degradation import DEFAULT_POINTS, f_down, slab_centres
from SlicerMedFuse.superres.slice_geometry import DICOM_SLICE_THICKNESS

__all__ = ["ThickSliceSimulation", "psnr", "score_volume", "simulate_thick_slices", "ssim", "ssim_maps"]

#: SSIM window (MONAI's default Gaussian window, as in Wang et al. 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


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


def _as_batch(images: np.ndarray, low: float, data_range: float) -> torch.Tensor:
    """(N, H, W) or (H, W) numpy images -> (N, 1, H, W) float32 tensor scaled to [0, 1] by the truth's range.

    Scaling first keeps float32 SSIM statistics exact for HU-valued CT (MONAI computes in float32).
    """
    tensor = torch.from_numpy((np.asarray(images, dtype=np.float64) - low) / data_range).float()
    return tensor.reshape(-1, 1, *tensor.shape[-2:])


def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(range^2 / MSE) (MONAI ``PSNRMetric``), optionally inside ``mask``."""
    estimate, truth = np.asarray(estimate, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if mask is not None:
        estimate, truth = estimate[mask], truth[mask]
    if np.array_equal(estimate, truth):
        return float("inf")
    prediction, reference = (torch.from_numpy(array.ravel())[None, None] for array in (estimate, truth))
    return float(PSNRMetric(max_val=data_range)(prediction, reference).item())


def ssim_maps(estimate: np.ndarray, truth: np.ndarray, low: float, data_range: float) -> torch.Tensor:
    """2D SSIM maps of a stack of images (MONAI defaults: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03).

    Args:
        estimate, truth: (N, H, W) or (H, W) images.
        low, data_range: the truth volume's minimum and range.

    Returns:
        (N, H - 10, W - 10) SSIM maps over the windows that lie fully inside each image (MONAI's
        valid convolution).
    """
    kernel = SSIM_WINDOW
    if min(np.shape(truth)[-2:]) < kernel:
        raise ValueError(f"images must be at least {kernel} pixels on each side, got {np.shape(truth)[-2:]}")
    maps, _ = compute_ssim_and_cs(
        _as_batch(estimate, low, data_range),
        _as_batch(truth, low, data_range),
        spatial_dims=2,
        kernel_size=(kernel, kernel),
        kernel_sigma=(SSIM_SIGMA, SSIM_SIGMA),
        data_range=1.0,
    )
    return maps[:, 0]


def ssim(estimate: np.ndarray, truth: np.ndarray, data_range: float, low: float | None = None) -> float:
    """Mean SSIM of two 2D images (MONAI ``SSIMMetric`` defaults; ``low`` defaults to the truth's minimum)."""
    low = float(np.min(truth)) if low is None else low
    return float(ssim_maps(estimate, truth, low, data_range).mean())


def _valid_windows(mask: np.ndarray) -> torch.Tensor:
    """Crop (N, H, W) masks to the centres of the SSIM windows that fit inside each image."""
    margin = SSIM_WINDOW // 2
    return torch.from_numpy(np.ascontiguousarray(mask[:, margin:-margin, margin:-margin]))


def score_volume(
    estimate: np.ndarray, truth: np.ndarray, axis_dim: int = 0, mask: np.ndarray | None = None
) -> dict[str, float]:
    """PSNR and SSIM of a restored volume, as in SR4ZCT's tables, on MONAI's metrics.

    The data range is the truth volume's (max - min), the issue's calibration convention.
    Central coronal and sagittal slices are the middle index of the two in-plane dimensions (numpy
    order, slice axis ``axis_dim``). The volume SSIM is the mean 2D SSIM over every coronal and every
    sagittal slice (the paper's 2D SSIM extended to all reformats; a 3D 11^3 window costs 10x more
    and mixes the slice direction into the window).

    Args:
        estimate: restored volume, numpy order (z, y, x).
        truth: reference volume, same shape.
        axis_dim: numpy dimension of the slice axis.
        mask: optional boolean mask (e.g. the head) for PSNR and SSIM inside it.

    Returns:
        ``psnr_coronal``, ``psnr_sagittal``, ``ssim_coronal``, ``ssim_sagittal``, ``psnr_volume``,
        ``ssim_volume`` and, with a mask, ``psnr_mask`` and ``ssim_mask`` (the mean SSIM map value
        at mask voxels, over the coronal and sagittal reformats).
    """
    if estimate.shape != truth.shape:
        raise ValueError(f"shapes differ: {estimate.shape} vs {truth.shape}")
    low, data_range = float(truth.min()), float(truth.max() - truth.min())
    moved_estimate, moved_truth = np.moveaxis(estimate, axis_dim, 0), np.moveaxis(truth, axis_dim, 0)
    _, rows, cols = moved_truth.shape
    coronal = (moved_estimate[:, rows // 2, :], moved_truth[:, rows // 2, :])
    sagittal = (moved_estimate[:, :, cols // 2], moved_truth[:, :, cols // 2])
    scores = {
        "psnr_coronal": psnr(*coronal, data_range),
        "psnr_sagittal": psnr(*sagittal, data_range),
        "ssim_coronal": ssim(*coronal, data_range, low),
        "ssim_sagittal": ssim(*sagittal, data_range, low),
        "psnr_volume": psnr(estimate, truth, data_range),
    }
    # every coronal (fixed row) and sagittal (fixed column) image: (rows, S, cols) and (cols, S, rows)
    views = ((1, 0, 2), (2, 0, 1))
    maps = [
        ssim_maps(np.transpose(moved_estimate, order), np.transpose(moved_truth, order), low, data_range)
        for order in views
    ]
    scores["ssim_volume"] = float(torch.cat([view.flatten() for view in maps]).mean())
    if mask is not None:
        moved_mask = np.moveaxis(mask, axis_dim, 0)
        scores["psnr_mask"] = psnr(estimate, truth, data_range, mask)
        inside = [
            view[_valid_windows(np.transpose(moved_mask, order))] for view, order in zip(maps, views, strict=True)
        ]
        scores["ssim_mask"] = float(torch.cat(inside).mean())
    return scores

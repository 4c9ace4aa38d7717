"""Reproduce the issue's interpolation calibration numbers and explain how they differ from run_benchmark.py.

The benchmark places the thick slices as SR4ZCT's code does: slab k covers [k d, k d + r] from the
volume's edge, centre r/2 + k d. The issue's calibration instead centres the slabs on fine slice
centres, and takes the data range of the whole fine volume rather than of the compared slices.
This script simulates that convention (9-point slab average, spacing d = r - o) on the real CT and
prints central coronal / sagittal PSNR of linear, cubic B-spline and Lanczos sinc under both data
ranges. Cheap: interpolation only (about a minute on one core).

    python benchmarks/superres/calibration_check.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from SlicerMedFuse.superres.degradation import apply_along, slab_average_matrix
from SlicerMedFuse.superres.evaluation import psnr
from SlicerMedFuse.superres.interpolation import interpolate_slices
from SlicerMedFuse.superres.methods import INTERPOLATORS

CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "head_ct" / "invesalius_ct0051_head.nii.gz"

CASES = ((3.0, 1.5), (4.5, 2.25), (6.0, 3.0))


def centred_simulation(image: sitk.Image, thickness: float, overlap: float) -> tuple[sitk.Image, sitk.Image]:
    """Thick slices whose centres are fine slice centres (the calibration's convention), and the truth between them."""
    array = torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))
    pixel, count = image.GetSpacing()[2], array.shape[0]
    fine_centres = (torch.arange(count, dtype=torch.float64) + 0.5) * pixel
    spacing = thickness - overlap
    first = int(np.ceil(thickness / 2 / pixel - 0.5))  # first fine slice whose slab fits in the volume
    slabs = int((fine_centres[-1] - thickness / 2 - fine_centres[first]) // spacing) + 1
    centres = fine_centres[first] + spacing * torch.arange(slabs, dtype=torch.float64)
    thick = sitk.GetImageFromArray(
        apply_along(slab_average_matrix(fine_centres, centres, thickness, 9), array, 0).numpy()
    )
    thick.SetSpacing((*image.GetSpacing()[:2], spacing))
    thick.SetDirection(image.GetDirection())
    thick.SetOrigin(image.TransformContinuousIndexToPhysicalPoint((0.0, 0.0, float(first))))
    last = int(round(float(centres[-1] / pixel - 0.5)))
    return thick, image[:, :, first : last + 1]


def main() -> int:
    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    image = sitk.ReadImage(str(CT))
    whole_range = float(np.ptp(sitk.GetArrayViewFromImage(image)))
    print("case       method   PSNR cor / sag (truth range)   PSNR cor / sag (whole-volume range)")
    for thickness, overlap in CASES:
        thick, truth_image = centred_simulation(image, thickness, overlap)
        truth = sitk.GetArrayFromImage(truth_image).astype(np.float32)
        truth_range = float(np.ptp(truth))
        rows, cols = truth.shape[1] // 2, truth.shape[2] // 2
        for method in INTERPOLATORS:
            estimate = sitk.GetArrayFromImage(interpolate_slices(thick, truth_image, method)).astype(np.float32)
            views = ((estimate[:, rows, :], truth[:, rows, :]), (estimate[:, :, cols], truth[:, :, cols]))
            scores = [psnr(*view, data_range) for data_range in (truth_range, whole_range) for view in views]
            print(
                f"ct:{thickness}/{overlap:<5} {method:8s} {scores[0]:.2f} / {scores[1]:.2f}"
                f"                  {scores[2]:.2f} / {scores[3]:.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

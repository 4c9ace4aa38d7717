"""A small real registration pair shared by the registration task tests.

The real T1 (vxm test scan) at 4 mm (40 x 48 x 56 voxels) and a copy warped by a known smooth
B-spline field, so a run takes a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.geometry import resample_to_spacing

#: Few iterations, where only the pipeline's checks, grids and files matter (not accuracy).
TINY = {"linear_iterations": "5,5", "iterations": "5,5,5"}


def warped_pair(shared_data: Path) -> dict[str, sitk.Image]:
    """``{"fixed": T1 at 4 mm, "moving": the T1 warped by a seeded B-spline field (3 mm sd)}``."""
    t1 = resample_to_spacing(sitk.ReadImage(str(shared_data / "brain_registration" / "vxm_test_scan_t1.nii.gz")), 4.0)
    warp = sitk.BSplineTransformInitializer(t1, [3, 3, 3], order=3)
    warp.SetParameters(np.random.default_rng(0).normal(0.0, 3.0, len(warp.GetParameters())).tolist())
    return {"fixed": t1, "moving": sitk.Resample(t1, t1, warp, sitk.sitkLinear, 0.0)}

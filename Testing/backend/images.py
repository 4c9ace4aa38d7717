"""Small test images built from the real head CT (../shared/data), or synthetic when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def head_ct_crop(shared_data: Path, size=(96, 96, 40), start=(80, 70, 30)) -> sitk.Image:
    """A crop of the real head CT (0.957 x 0.957 x 1.5 mm, HU, LPS direction diag(1, -1, 1))."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return sitk.RegionOfInterest(image, size, start)


def thick_slices(image: sitk.Image, keep_every: int) -> sitk.Image:
    """Keep every k-th slice along z (a thick-slice acquisition without slab blur)."""
    return image[:, :, ::keep_every]


def ramp_volume(size=(20, 24, 10), spacing=(1.0, 1.0, 3.0)) -> sitk.Image:
    z, y, x = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in size[::-1]], indexing="ij")
    image = sitk.GetImageFromArray(x + 2 * y + 5 * z)
    image.SetSpacing(spacing)
    image.SetOrigin((10.0, -5.0, 3.0))
    return image

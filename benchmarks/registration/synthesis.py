"""SynthMorph-style intensity images from label maps (benchmark cases b and c).

After Hoffmann et al., "SynthMorph" (IEEE TMI 2022): every label gets a Gaussian intensity
distribution, the image is blurred, multiplied by a smooth random bias field and gets noise.
SynthMorph draws the label means uniformly at random (arbitrary contrasts); here they follow a
named contrast with a seeded jitter, because case (b) asks for a same-contrast pair and case (c)
for a known different one:

* ``t1``: the mean intensity of each label in the real T1 (``vxm_test_scan_t1`` with its aseg),
  so the synthetic T1 has that scanner's contrast;
* ``t2``: T2-like tissue levels (CSF bright, grey matter mid, white matter dark, vessels dark,
  white-matter hypointensities bright), set by hand from the usual T2 appearance.

Every intensity parameter is seeded; all values are in 0..1.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

__all__ = ["BRAIN_LABEL_LIMIT", "brain_only", "crop_to_foreground", "render", "t1_means", "t2_means"]

#: SynthSeg ids from here on (136, 137, 163, 164, 502-530) are extra-cerebral generation classes.
BRAIN_LABEL_LIMIT = 136

# T2-like level per FreeSurfer label (hand-set, see the module docstring); unlisted labels use grey matter's.
_T2_WHITE, _T2_GREY, _T2_CSF = 0.25, 0.5, 0.95
_T2_LEVELS = {
    **dict.fromkeys((2, 41, 7, 46, 85, 251, 252, 253, 254, 255), _T2_WHITE),
    **dict.fromkeys((3, 42, 8, 47, 11, 50, 17, 53, 18, 54, 26, 58, 80, 25, 57), _T2_GREY),
    **dict.fromkeys((4, 43, 5, 44, 14, 15, 24, 72), _T2_CSF),
    10: 0.4,
    49: 0.4,  # thalamus
    12: 0.45,
    51: 0.45,  # putamen
    13: 0.3,
    52: 0.3,  # pallidum (iron: dark on T2)
    16: 0.35,  # brain stem
    28: 0.35,
    60: 0.35,  # ventral DC
    30: 0.1,
    62: 0.1,  # vessels (flow void)
    31: 0.65,
    63: 0.65,  # choroid plexus
    77: 0.7,  # white-matter hypointensities (T1) are T2-hyperintense
}


def brain_only(labels: np.ndarray) -> np.ndarray:
    """The label map with SynthSeg's extra-cerebral classes set to background (the real T1 is skull-stripped)."""
    return np.where(labels >= BRAIN_LABEL_LIMIT, 0, labels)


def crop_to_foreground(image: sitk.Image, margin: int = 10) -> sitk.Image:
    """The image cropped to the bounding box of its non-zero voxels plus ``margin`` voxels (same physical placement)."""
    array = sitk.GetArrayViewFromImage(image)
    where = np.argwhere(array > 0)
    low = np.maximum(where.min(0) - margin, 0)
    high = np.minimum(where.max(0) + margin + 1, array.shape)
    size = [int(n) for n in (high - low)[::-1]]
    return sitk.RegionOfInterest(image, size, [int(i) for i in low[::-1]])


def t1_means(t1: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Mean intensity of every label of ``labels`` in ``t1``, the image scaled to 0..1 by its maximum."""
    scaled = t1.astype(np.float64) / float(t1.max())
    ids = np.unique(labels)
    sums = np.bincount(np.searchsorted(ids, labels.ravel()), weights=scaled.ravel(), minlength=len(ids))
    counts = np.bincount(np.searchsorted(ids, labels.ravel()), minlength=len(ids))
    return {int(i): float(s / c) for i, s, c in zip(ids, sums, counts, strict=True) if i != 0}


def t2_means(labels: np.ndarray) -> dict[int, float]:
    """T2-like level of every non-zero label present."""
    return {int(i): _T2_LEVELS.get(int(i), _T2_GREY) for i in np.unique(labels) if i != 0}


def render(
    labels: np.ndarray,
    means: dict[int, float],
    seed: int,
    *,
    mean_jitter: float = 0.03,
    label_std: float = 0.03,
    blur_sigma: tuple[float, float] = (0.5, 1.0),
    bias_std: float = 0.15,
    noise_std: float = 0.01,
) -> np.ndarray:
    """A float32 intensity image (``labels``' shape, 0..1) from a label map, SynthMorph-style.

    Args:
        labels: integer label map ``(k, j, i)``; 0 is background (intensity 0).
        means: intensity per label id; labels without an entry get the median of the given means.
        seed: seeds every random draw below.
        mean_jitter: std of the Gaussian jitter added to each label's mean.
        label_std: std of the Gaussian intensity within a label.
        blur_sigma: range of the Gaussian blur std in voxels (one uniform draw per image).
        bias_std: std of the log bias field (a 4^3 control grid, trilinearly upsampled).
        noise_std: std of the additive Gaussian noise after blur and bias.
    """
    rng = np.random.default_rng(seed)
    ids = np.unique(labels)
    fallback = float(np.median(list(means.values())))
    level = np.array([means.get(int(i), fallback) for i in ids]) + rng.normal(0.0, mean_jitter, len(ids))
    level[ids == 0] = 0.0
    index = np.searchsorted(ids, labels)
    image = level[index] + rng.normal(0.0, label_std, labels.shape) * (labels > 0)
    volume = torch.from_numpy(image.astype(np.float32))[None, None]
    sigma = float(rng.uniform(*blur_sigma))
    radius = int(np.ceil(3 * sigma))
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    kernel = kernel / kernel.sum()
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = -1
        padding = [0, 0, 0]
        padding[axis] = radius
        volume = F.conv3d(volume, kernel.view(shape), padding=tuple(padding))
    coarse = torch.from_numpy(rng.normal(0.0, bias_std, (1, 1, 4, 4, 4)).astype(np.float32))
    bias = torch.exp(F.interpolate(coarse, size=labels.shape, mode="trilinear", align_corners=True))
    volume = volume * bias
    out = volume[0, 0].numpy() + rng.normal(0.0, noise_std, labels.shape).astype(np.float32)
    return np.clip(out, 0.0, None).astype(np.float32) / max(float(out.max()), 1e-6)

"""BHSD intensity preprocessing, multi-window CT channels and the bad-input checks of a head CT.

BHSD (Wu et al., MLMI 2023, Sec. 3 "Implementation Details"), following nnU-Net: "we first
truncated the HU values of each scan using the range of [-40, 120], and then normalized the
truncated voxel values by subtracting 40 and dividing by 80". :func:`bhsd_normalize` does exactly
that, so -40 HU -> -1, 40 HU -> 0 and 120 HU -> 1.

The MedFuse multi-window variant feeds further CT windows (subdural, bone, ...) as extra input
paths; :class:`CTWindow` maps HU to [-1, 1] the same way, and the BHSD transform is the window
level 40 / width 160 (:data:`BRAIN_WINDOW`).

The checks turn two bad inputs into one-sentence :class:`~SlicerMedFuse.errors.InputError`
messages: an MR image given as CT (:func:`check_ct_intensities`, by intensity range) and a CT
without a head in the field of view (:func:`check_head_in_view`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.errors import InputError, UsageError

if TYPE_CHECKING:
    import torch

    ArrayLike = np.ndarray | torch.Tensor
else:
    ArrayLike = np.ndarray

__all__ = [
    "BHSD_HU_RANGE",
    "BONE_WINDOW",
    "BRAIN_WINDOW",
    "SUBDURAL_WINDOW",
    "THICK_SLICE_MM",
    "WINDOWS",
    "CTWindow",
    "IntensityEvidence",
    "bhsd_normalize",
    "check_ct_intensities",
    "check_head_in_view",
    "intensity_evidence",
    "multi_window",
    "preprocess_ct",
    "resolve_windows",
]

#: Slices thicker than this (mm) miss thin bleeds (SAH, SDH): the segmentation warns and points to super-resolution.
THICK_SLICE_MM = 5.0

BHSD_HU_RANGE: tuple[float, float] = (-40.0, 120.0)
"""HU truncation range of BHSD (and nnU-Net's CT normalisation for this dataset)."""


@dataclasses.dataclass(frozen=True)
class CTWindow:
    """A display window (level, width in HU) used as a network input: HU -> [-1, 1].

    ``apply`` clips HU to ``[level - width / 2, level + width / 2]`` and maps that range linearly
    onto ``[-1, 1]``; ``BRAIN_WINDOW`` (L40 / W160) is exactly the BHSD normalisation.
    """

    name: str
    level: float
    width: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ValueError(f"window {self.name!r} needs a positive width (HU), got {self.width}")

    @property
    def hu_range(self) -> tuple[float, float]:
        """The HU interval the window spans."""
        return (self.level - self.width / 2.0, self.level + self.width / 2.0)

    def apply(self, hu: ArrayLike) -> ArrayLike:
        """Map HU values (any shape, numpy array or torch tensor) to [-1, 1]; float32 for numpy input."""
        low, high = self.hu_range
        half = self.width / 2.0
        if isinstance(hu, np.ndarray):
            return ((np.clip(hu.astype(np.float32, copy=False), low, high) - self.level) / half).astype(np.float32)
        return (hu.float().clamp(low, high) - self.level) / half


BRAIN_WINDOW = CTWindow("brain", 40.0, 160.0)  # = BHSD clip [-40, 120], (HU - 40) / 80
SUBDURAL_WINDOW = CTWindow("subdural", 75.0, 215.0)  # widened blood/brain window for thin extra-axial blood
STROKE_WINDOW = CTWindow("stroke", 40.0, 40.0)  # narrow grey/white-matter window
BONE_WINDOW = CTWindow("bone", 600.0, 2800.0)  # skull and fractures next to extra-axial bleeds

WINDOWS: Mapping[str, CTWindow] = {w.name: w for w in (BRAIN_WINDOW, SUBDURAL_WINDOW, STROKE_WINDOW, BONE_WINDOW)}
"""The named windows that ``multi_window`` and the task parameters accept."""


def bhsd_normalize(hu: ArrayLike) -> ArrayLike:
    """BHSD intensity normalisation: clip HU to [-40, 120], then ``(HU - 40) / 80``.

    Args:
        hu: CT values in HU, any shape; numpy array or torch tensor.

    Returns:
        Same shape, values in [-1, 1] (float32 for numpy input).
    """
    return BRAIN_WINDOW.apply(hu)


def resolve_windows(windows: Sequence[str | CTWindow]) -> tuple[CTWindow, ...]:
    """Window names or objects -> windows; raises UsageError naming the known windows."""
    resolved = []
    for window in windows:
        if isinstance(window, CTWindow):
            resolved.append(window)
        elif window in WINDOWS:
            resolved.append(WINDOWS[window])
        else:
            raise UsageError(f"Unknown CT window {window!r}; choose from {', '.join(WINDOWS)}.")
    if not resolved:
        raise UsageError("Give at least one CT window (the BHSD model uses 'brain').")
    return tuple(resolved)


def multi_window(hu: ArrayLike, windows: Sequence[str | CTWindow] = ("brain",)) -> ArrayLike:
    """Stack several windows of one CT as channels.

    Args:
        hu: CT in HU, shape ``(*spatial)``; numpy array or torch tensor.
        windows: Window names (see :data:`WINDOWS`) or :class:`CTWindow` objects; channel order.

    Returns:
        Shape ``(len(windows), *spatial)``, each channel in [-1, 1].
    """
    channels = [w.apply(hu) for w in resolve_windows(windows)]
    if isinstance(hu, np.ndarray):
        return np.stack(channels, axis=0)
    import torch

    return torch.stack(channels, dim=0)


def preprocess_ct(ct: sitk.Image, windows: Sequence[str | CTWindow] = ("brain",)) -> np.ndarray:
    """A CT image -> network input array ``(C, z, y, x)`` float32 (channel 0 first in ``windows``)."""
    return multi_window(sitk.GetArrayFromImage(ct).astype(np.float32), windows)


@dataclasses.dataclass(frozen=True)
class IntensityEvidence:
    """Intensity statistics that separate a CT in HU from an MR (or an unscaled CT).

    Attributes:
        minimum: Lowest value.
        maximum: Highest value.
        air_fraction: Fraction of voxels at or below -500 (air and outside-FOV padding in HU).
        soft_tissue_fraction: Fraction of voxels in [-100, 100] HU (fat to blood and brain).
        bone_fraction: Fraction of voxels in [300, 3500] HU.
        negative_fraction: Fraction of voxels below 0.
    """

    minimum: float
    maximum: float
    air_fraction: float
    soft_tissue_fraction: float
    bone_fraction: float
    negative_fraction: float

    @property
    def looks_like_ct(self) -> bool:
        """True for a CT in HU: plenty of air near -1000, soft tissue near 0-100 and values in range."""
        return (
            self.minimum >= -3100.0  # padding values of real scanners reach -3024
            and self.maximum <= 32767.0
            and self.air_fraction >= 0.05
            and self.soft_tissue_fraction >= 0.05
        )


def intensity_evidence(image: sitk.Image, max_samples: int = 2_000_000) -> IntensityEvidence:
    """Intensity statistics of ``image`` (a regular subsample of at most ``max_samples`` voxels)."""
    values = sitk.GetArrayViewFromImage(image).ravel()
    step = max(1, values.size // max_samples)
    sample = np.asarray(values[::step], dtype=np.float32)
    if sample.size == 0:
        raise InputError("The image is empty; give a head CT volume.")
    n = float(sample.size)
    return IntensityEvidence(
        minimum=float(sample.min()),
        maximum=float(sample.max()),
        air_fraction=float(np.count_nonzero(sample <= -500.0)) / n,
        soft_tissue_fraction=float(np.count_nonzero((sample >= -100.0) & (sample <= 100.0))) / n,
        bone_fraction=float(np.count_nonzero((sample >= 300.0) & (sample <= 3500.0))) / n,
        negative_fraction=float(np.count_nonzero(sample < 0.0)) / n,
    )


def check_ct_intensities(image: sitk.Image) -> IntensityEvidence:
    """Raise InputError unless ``image`` looks like a CT in Hounsfield units.

    An MR has no calibrated air at -1000 (its values are mostly >= 0 in arbitrary units); a CT
    stored without its rescale slope/intercept has air near 0 instead of -1000. Both give a
    sentence that names the fix.

    Returns:
        The evidence, for logging.
    """
    evidence = intensity_evidence(image)
    if evidence.looks_like_ct:
        return evidence
    if evidence.negative_fraction < 0.01:
        raise InputError(
            "The image has no air at about -1000 HU (its values are not Hounsfield units): it looks like an MR or a CT "
            "without its rescale slope/intercept; give a non-contrast head CT in HU."
        )
    raise InputError(
        f"The image intensities do not look like a head CT in HU (air {evidence.air_fraction:.0%}, soft tissue "
        f"{evidence.soft_tissue_fraction:.0%} of voxels); give a non-contrast head CT in Hounsfield units."
    )


def check_head_in_view(ct: sitk.Image, min_intracranial_ml: float = 100.0) -> float:
    """Raise InputError unless the CT shows a skull enclosing at least ``min_intracranial_ml`` of brain.

    Args:
        ct: CT in HU (run :func:`check_ct_intensities` first).
        min_intracranial_ml: Smallest intracranial volume (mL) accepted; a whole adult head has
            about 1200-1700 mL, a BHSD scan of 24-40 thick slices several hundred or more.

    Returns:
        The intracranial volume found (mL).
    """
    from SlicerMedFuse.hemorrhage.anatomy import intracranial_mask

    voxel_ml = float(np.prod(ct.GetSpacing())) / 1000.0
    volume = float(np.count_nonzero(intracranial_mask(ct))) * voxel_ml
    if volume < min_intracranial_ml:
        raise InputError(
            f"No head was found in the field of view (skull-enclosed brain {volume:.0f} mL, at least "
            f"{min_intracranial_ml:.0f} mL needed); give a head CT that covers the brain."
        )
    return volume

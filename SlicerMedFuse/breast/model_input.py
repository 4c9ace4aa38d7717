"""What a breast-mass network sees: its channels, the intensity normalisation and the 2D slice size.

One :class:`BreastPreprocessing` is stored in every breast-mass bundle's manifest (``preprocessing``)
and used, unchanged, by training and inference, so the two can never disagree.

* **Channels**, master first: ``t1c`` (required), then any of ``t2w`` and ``subtraction``
  (``t1c - pre``, the DCE paper's subtraction image). An absent channel is zeros plus a ``False``
  in the presence mask (the networks then ignore its stream).
* **Normalisation** (the breast paper says only "intensity normalized"): per volume and channel,
  clip to the 0.5 / 99.5 percentiles and z-score, the MAML recipe of the seed notes.
* **2D**: every axial slice is resized to ``in_plane_size`` squared (the paper resizes its
  images and labels to 256 x 256) and the prediction is resized back. **3D**: the volume is
  resampled to ``spacing_mm`` and predicted with a sliding window of ``patch_zyx``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from SlicerMedFuse.errors import ModelError

__all__ = ["CHANNELS", "BreastPreprocessing", "normalize_volume", "resize_slices", "stack_channels"]

#: Network channels a bundle may use, in the only allowed order (master first).
CHANNELS = ("t1c", "t2w", "subtraction")
#: Percentiles of the intensity clipping before the z-score.
CLIP_PERCENTILES = (0.5, 99.5)


@dataclasses.dataclass(frozen=True)
class BreastPreprocessing:
    """Input settings of a breast-mass network (stored in the bundle manifest).

    Attributes:
        channels: Network channels in order, ``"t1c"`` first (see :data:`CHANNELS`).
        spatial_dims: 2 (slice-wise, the paper) or 3 (volumes).
        in_plane_size: 2D: side of the square slice the network sees (paper: 256).
        spacing_mm: 3D: voxel spacing ``(x, y, z)`` the volume is resampled to.
        patch_zyx: 3D: sliding-window patch size (multiples of the network's size divisor).
    """

    channels: tuple[str, ...] = ("t1c", "t2w")
    spatial_dims: int = 2
    in_plane_size: int = 256
    spacing_mm: tuple[float, float, float] = (1.3125, 1.3125, 2.1)
    patch_zyx: tuple[int, int, int] = (32, 128, 128)

    def __post_init__(self) -> None:
        channels = tuple(self.channels)
        if not channels or channels[0] != "t1c" or len(set(channels)) != len(channels):
            raise ModelError(f"Breast-mass channels must start with 't1c' and not repeat; got {list(channels)}.")
        order = [CHANNELS.index(c) for c in channels if c in CHANNELS]
        if len(order) != len(channels) or order != sorted(order):
            raise ModelError(
                f"Breast-mass channels must be among {', '.join(CHANNELS)} in that order; got {list(channels)}."
            )
        if self.spatial_dims not in (2, 3):
            raise ModelError(f"spatial_dims must be 2 or 3; got {self.spatial_dims}.")
        if self.in_plane_size < 16 or self.in_plane_size % 16:
            raise ModelError(f"in_plane_size must be a multiple of 16 (at least 16); got {self.in_plane_size}.")

    @property
    def roles(self) -> tuple[str, ...]:
        """Task input roles the channels come from (``subtraction`` needs ``pre``)."""
        return tuple("pre" if c == "subtraction" else c for c in self.channels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "breast-mass",
            "channels": list(self.channels),
            "spatial_dims": self.spatial_dims,
            "in_plane_size": self.in_plane_size,
            "spacing_mm": list(self.spacing_mm),
            "patch_zyx": list(self.patch_zyx),
            "normalization": {"clip_percentiles": list(CLIP_PERCENTILES), "then": "z-score per volume and channel"},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "the bundle") -> BreastPreprocessing:
        """Read the manifest's ``preprocessing`` (ModelError naming ``source`` when unusable)."""
        if data.get("kind") != "breast-mass":
            raise ModelError(f"{source} has no breast-mass preprocessing; it is not a breast-mass model.")
        try:
            return cls(
                channels=tuple(str(c) for c in data["channels"]),
                spatial_dims=int(data.get("spatial_dims", 2)),
                in_plane_size=int(data.get("in_plane_size", 256)),
                spacing_mm=tuple(float(s) for s in data.get("spacing_mm", (1.3125, 1.3125, 2.1))),  # type: ignore[arg-type]
                patch_zyx=tuple(int(s) for s in data.get("patch_zyx", (32, 128, 128))),  # type: ignore[arg-type]
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"{source} has unusable breast-mass preprocessing ({error}).") from None


def normalize_volume(array: np.ndarray) -> np.ndarray:
    """Clip to the 0.5 / 99.5 percentiles and z-score (float32, same shape).

    Percentiles come from every 7th voxel (a regular subsample: the same result to a fraction of a
    percent on MR volumes, several times faster on a 512 x 512 x 120 study).
    """
    sample = np.asarray(array, dtype=np.float32).reshape(-1)[::7]
    low, high = np.percentile(sample, CLIP_PERCENTILES)
    clipped = np.clip(np.asarray(array, dtype=np.float32), low, high)
    mean, std = float(clipped.mean()), float(clipped.std())
    clipped -= mean
    clipped /= max(std, 1e-6)
    return clipped


def stack_channels(
    arrays: Mapping[str, np.ndarray], preprocessing: BreastPreprocessing
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised network input from aligned ``(z, y, x)`` arrays by role (``t1c``, ``t2w``, ``pre``).

    Returns:
        ``(channels, presence)``: float32 ``(C, z, y, x)`` and boolean ``(C,)``. A channel whose
        source is missing is zeros with ``presence False``.
    """
    t1c = np.asarray(arrays["t1c"], dtype=np.float32)
    stacked = np.zeros((len(preprocessing.channels), *t1c.shape), dtype=np.float32)
    presence = np.zeros(len(preprocessing.channels), dtype=bool)
    for index, channel in enumerate(preprocessing.channels):
        if channel == "subtraction":
            if arrays.get("pre") is None:
                continue
            source = t1c - np.asarray(arrays["pre"], dtype=np.float32)
        elif arrays.get(channel) is None:
            continue
        else:
            source = arrays[channel]
        stacked[index] = normalize_volume(source)
        presence[index] = True
    return stacked, presence


def resize_slices(batch: Any, size: Sequence[int], *, mode: str = "bilinear") -> Any:
    """Resize a ``(N, C, H, W)`` torch tensor to ``size`` (antialiased when shrinking, bilinear or nearest)."""
    import torch.nn.functional as F

    if tuple(batch.shape[-2:]) == tuple(size):
        return batch
    if mode == "nearest":
        return F.interpolate(batch, size=tuple(size), mode="nearest")
    shrinking = any(s < b for s, b in zip(size, batch.shape[-2:], strict=True))
    return F.interpolate(batch, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrinking)

"""Random training patches from preprocessed volumes, with nnU-Net-style foreground oversampling.

nnU-Net draws a fraction of each batch (``oversample_foreground_percent`` = 0.33) centred on a
voxel of a random foreground class present in the case, the rest uniformly. With
``class_balanced`` the foreground class is drawn uniformly among the classes of the whole
dataset first, then a case containing it: a class present in few cases (EDH in BHSD and in the
simulator) is then centred as often as a common one, which short (CPU) schedules need to learn it
at all; nnU-Net's per-case draw stays the default. Foreground locations
are indexed once per case (at most ``max_locations`` per class), so sampling costs only the crop.
Patches reaching outside the volume are padded with each channel's minimum (air for CT windows)
and label 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["CaseArrays", "PatchSampler", "index_foreground"]


@dataclasses.dataclass(frozen=True)
class CaseArrays:
    """One preprocessed case.

    Attributes:
        case_id: Its id.
        image: ``(C, z, y, x)`` float32 (may be a read-only memory map).
        labels: ``(z, y, x)`` uint8, or None for an unlabelled case.
        locations: Label value -> ``(N, 3)`` int32 voxel indices of that class (subsampled).
    """

    case_id: str
    image: np.ndarray
    labels: np.ndarray | None
    locations: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def has_foreground(self) -> bool:
        return any(len(v) for v in self.locations.values())


def index_foreground(labels: np.ndarray, max_locations: int = 10_000, seed: int = 0) -> dict[int, np.ndarray]:
    """Voxel indices ``(N, 3)`` of each foreground class in ``labels`` (at most ``max_locations`` each)."""
    rng = np.random.default_rng(seed)
    found = {}
    for value in np.unique(labels):
        if value == 0:
            continue
        where = np.argwhere(labels == value).astype(np.int32)
        if len(where) > max_locations:
            where = where[rng.choice(len(where), max_locations, replace=False)]
        found[int(value)] = where
    return found


class PatchSampler:
    """Draws batches of patches ``(B, C, *patch)`` and labels ``(B, 1, *patch)`` from cases.

    Args:
        cases: The preprocessed cases (labelled, or all unlabelled for semi-supervised batches).
        patch_size: Patch ``(z, y, x)`` in voxels.
        foreground_probability: Chance that a patch is centred on a foreground voxel (of a class
            drawn uniformly among the classes present in the case), when the case has one.
        class_balanced: Draw foreground patches class first (uniform over the dataset's classes),
            then a case holding that class, instead of case first (nnU-Net).
    """

    def __init__(
        self,
        cases: Sequence[CaseArrays],
        patch_size: Sequence[int],
        foreground_probability: float = 0.33,
        class_balanced: bool = False,
    ):
        if not cases:
            raise ValueError("PatchSampler needs at least one case")
        if not 0.0 <= foreground_probability <= 1.0:
            raise ValueError(f"foreground_probability must be in [0, 1], got {foreground_probability}")
        self.cases = list(cases)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.foreground_probability = float(foreground_probability)
        self._pad_values = [np.asarray([float(c.min()) for c in case.image], np.float32) for case in self.cases]
        holders: dict[int, list[int]] = {}
        for index, case in enumerate(self.cases):
            for value, where in case.locations.items():
                if len(where):
                    holders.setdefault(value, []).append(index)
        self._cases_with_class = {k: np.asarray(v) for k, v in sorted(holders.items())} if class_balanced else {}

    def _foreground_center(self, rng: np.random.Generator) -> tuple[int, np.ndarray]:
        """A class-balanced draw: class uniformly, then a case holding it, then one of its voxels."""
        classes = list(self._cases_with_class)
        value = classes[int(rng.integers(len(classes)))]
        holders = self._cases_with_class[value]
        index = int(holders[int(rng.integers(len(holders)))])
        where = self.cases[index].locations[value]
        return index, where[int(rng.integers(len(where)))].astype(np.int64)

    def _center(self, case: CaseArrays, rng: np.random.Generator) -> np.ndarray:
        if case.has_foreground and rng.random() < self.foreground_probability:
            classes = [k for k, v in case.locations.items() if len(v)]
            where = case.locations[classes[int(rng.integers(len(classes)))]]
            return where[int(rng.integers(len(where)))].astype(np.int64)
        return self._uniform_center(case, rng)

    def _uniform_center(self, case: CaseArrays, rng: np.random.Generator) -> np.ndarray:
        shape = np.asarray(case.image.shape[1:])
        half = np.asarray(self.patch_size) // 2
        low = np.minimum(half, shape - 1)
        high = np.maximum(shape - (np.asarray(self.patch_size) - half), low)
        return np.asarray([rng.integers(lo, hi + 1) for lo, hi in zip(low, high, strict=True)], np.int64)

    def crop(self, index: int, center: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The patch of case ``index`` centred on ``center``: image ``(C, *patch)``, labels ``(1, *patch)``."""
        case = self.cases[index]
        shape = np.asarray(case.image.shape[1:])
        size = np.asarray(self.patch_size)
        start = np.asarray(center) - size // 2
        src_lo, src_hi = np.maximum(start, 0), np.minimum(start + size, shape)
        dst_lo = src_lo - start
        dst_hi = dst_lo + (src_hi - src_lo)
        src = tuple(slice(int(a), int(b)) for a, b in zip(src_lo, src_hi, strict=True))
        dst = tuple(slice(int(a), int(b)) for a, b in zip(dst_lo, dst_hi, strict=True))
        image = np.empty((case.image.shape[0], *self.patch_size), np.float32)
        image[...] = self._pad_values[index][:, None, None, None]
        image[(slice(None), *dst)] = case.image[(slice(None), *src)]
        labels = np.zeros((1, *self.patch_size), np.uint8)
        if case.labels is not None:
            labels[(0, *dst)] = case.labels[src]
        return image, labels

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A batch: images ``(B, C, *patch)`` float32 and labels ``(B, 1, *patch)`` uint8."""
        if not self._cases_with_class:
            picks = rng.integers(len(self.cases), size=batch_size)
            crops = [self.crop(int(i), self._center(self.cases[int(i)], rng)) for i in picks]
        else:
            crops = []
            for _ in range(batch_size):
                if rng.random() < self.foreground_probability:
                    crops.append(self.crop(*self._foreground_center(rng)))
                else:
                    index = int(rng.integers(len(self.cases)))
                    crops.append(self.crop(index, self._uniform_center(self.cases[index], rng)))
        return np.stack([c[0] for c in crops]), np.stack([c[1] for c in crops])

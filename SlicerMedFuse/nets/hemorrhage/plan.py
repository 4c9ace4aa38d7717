"""nnU-Net-style U-Net topology from a patch size and a voxel spacing (kernels and strides per level).

nnU-Net (Isensee et al., Nat. Methods 2021) pools an axis only while its spacing is at most twice
the finest spacing and its feature map keeps at least ``min_size`` voxels, and uses in-plane-only
kernels (size 1 along an axis) while that axis is much coarser than the others. This is the same
heuristic as MONAI's DynUNet tutorial (``get_kernels_strides``), written for ``(z, y, x)`` arrays
and capped at ``max_levels`` levels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

__all__ = ["UNetPlan", "plan_unet"]


@dataclasses.dataclass(frozen=True)
class UNetPlan:
    """Per-level convolution kernels and strides of a DynUNet, ``(z, y, x)`` order.

    Attributes:
        kernel_size: One kernel per level, the first for the input block, the last for the bottleneck.
        strides: One stride per level; the first is ``(1, 1, 1)`` (the input block does not pool).
    """

    kernel_size: tuple[tuple[int, int, int], ...]
    strides: tuple[tuple[int, int, int], ...]

    @property
    def levels(self) -> int:
        """Number of resolution levels (input block + downsamplings)."""
        return len(self.strides)

    def divisor(self) -> tuple[int, int, int]:
        """The product of the strides per axis: every input size must be a multiple of it."""
        total = [1, 1, 1]
        for stride in self.strides:
            total = [t * s for t, s in zip(total, stride, strict=True)]
        return (total[0], total[1], total[2])


def plan_unet(
    patch_size: Sequence[int], spacing_zyx: Sequence[float], *, max_levels: int = 6, min_size: int = 4
) -> UNetPlan:
    """Kernels and strides for a 3D U-Net on ``patch_size`` voxels of ``spacing_zyx`` mm.

    Args:
        patch_size: Training patch ``(z, y, x)`` in voxels, e.g. BHSD's ``(32, 128, 128)``.
        spacing_zyx: Voxel spacing ``(z, y, x)`` in mm.
        max_levels: Most resolution levels (including the full-resolution one).
        min_size: An axis is pooled only while the pooled feature map keeps at least this many voxels
            (nnU-Net: 4).

    Returns:
        The :class:`UNetPlan` (at least 3 levels, as DynUNet requires).

    Raises:
        ValueError: For sizes or spacings that are not three positive numbers, or a patch too small
            to pool twice.
    """
    sizes = [int(s) for s in patch_size]
    spacings = [float(s) for s in spacing_zyx]
    if len(sizes) != 3 or len(spacings) != 3 or min(sizes) < 1 or min(spacings) <= 0:
        raise ValueError(f"patch_size and spacing_zyx need three positive values, got {patch_size}, {spacing_zyx}")
    kernels: list[tuple[int, int, int]] = []
    strides: list[tuple[int, int, int]] = [(1, 1, 1)]
    while len(strides) < max_levels:
        ratios = [s / min(spacings) for s in spacings]
        stride = tuple(
            2 if r <= 2.0 and n >= 2 * min_size and n % 2 == 0 else 1 for r, n in zip(ratios, sizes, strict=True)
        )
        if all(s == 1 for s in stride):
            break
        kernels.append(tuple(3 if r <= 2.0 else 1 for r in ratios))  # type: ignore[arg-type]
        strides.append(stride)  # type: ignore[arg-type]
        sizes = [n // s for n, s in zip(sizes, stride, strict=True)]
        spacings = [p * s for p, s in zip(spacings, stride, strict=True)]
    kernels.append(tuple(3 if s / min(spacings) <= 2.0 else 1 for s in spacings))  # type: ignore[arg-type]
    if len(strides) < 3:
        raise ValueError(
            f"patch {tuple(patch_size)} is too small for a U-Net: it can be pooled only {len(strides) - 1}x"
        )
    return UNetPlan(tuple(kernels), tuple(strides))

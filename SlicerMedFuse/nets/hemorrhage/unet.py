"""The nnU-Net-like 3D U-Net used for BHSD hemorrhage segmentation (MONAI DynUNet + deep supervision)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import torch
from monai.networks.nets import DynUNet
from torch import nn

__all__ = ["HemorrhageUNet"]


class HemorrhageUNet(nn.Module):
    """nnU-Net-style 3D U-Net (MONAI :class:`~monai.networks.nets.DynUNet`) with explicit deep supervision.

    BHSD (Wu et al., MLMI 2023) benchmarks nnU-Net 3D on ``[32, 128, 128]`` patches; this is the same
    topology family: per-level kernels/strides from :func:`~SlicerMedFuse.nets.hemorrhage.plan.plan_unet`,
    instance norm, leaky ReLU, transposed-convolution upsampling. Unlike DynUNet's own training-mode
    output, ``forward`` never changes its result with ``train()``/``eval()``: deep supervision is asked
    for explicitly, and the heads come back at their own (coarser) resolution so the targets are
    downsampled instead of the logits upsampled (as nnU-Net does; cheaper on CPU).

    Args:
        in_channels: Input channels (CT windows), e.g. 1 for the BHSD normalisation alone.
        out_channels: Classes including background (6 for BHSD).
        kernel_size: One 3D kernel per level (input block first, bottleneck last).
        strides: One 3D stride per level; the first is ``(1, 1, 1)``.
        filters: Feature channels per level (at least one per level; extra values are ignored).
        deep_supr_num: Number of deep supervision heads below full resolution (0 disables them);
            must be smaller than the number of upsamplings.
        norm_name: DynUNet normalisation (``"instance"`` as nnU-Net).
        res_block: Residual blocks instead of plain double convolutions.

    Example::

        net = HemorrhageUNet(1, 6, kernel_size=[[3, 3, 3]] * 5, strides=[[1, 1, 1]] + [[2, 2, 2]] * 4,
                             filters=[16, 32, 64, 128, 256], deep_supr_num=2)
        logits = net(torch.zeros(1, 1, 32, 128, 128))                       # (1, 6, 32, 128, 128)
        scales = net(torch.zeros(1, 1, 32, 128, 128), deep_supervision=True)  # [full, 1/2, 1/4]
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        filters: Sequence[int],
        deep_supr_num: int = 2,
        norm_name: str = "instance",
        res_block: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 2:
            raise ValueError(f"in_channels must be >= 1 and out_channels >= 2, got {in_channels}, {out_channels}")
        if len(filters) < len(strides):
            raise ValueError(f"filters needs one value per level ({len(strides)}), got {list(filters)}")
        if deep_supr_num < 0:
            raise ValueError(f"deep_supr_num must be >= 0, got {deep_supr_num}")
        self.deep_supr_num = int(deep_supr_num)
        self.unet = DynUNet(
            spatial_dims=3,
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=[list(k) for k in kernel_size],
            strides=[list(s) for s in strides],
            upsample_kernel_size=[list(s) for s in strides[1:]],
            filters=list(filters)[: len(strides)],
            norm_name=norm_name,
            deep_supervision=self.deep_supr_num > 0,
            deep_supr_num=max(self.deep_supr_num, 1),
            res_block=res_block,
        )

    @overload
    def forward(self, x: torch.Tensor, deep_supervision: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def forward(self, x: torch.Tensor, deep_supervision: Literal[True]) -> list[torch.Tensor]: ...

    def forward(self, x: torch.Tensor, deep_supervision: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Segment a batch of patches.

        Args:
            x: ``(B, in_channels, Z, Y, X)``; each size a multiple of the product of the strides.
            deep_supervision: Also return the deep supervision heads.

        Returns:
            Without deep supervision: logits ``(B, out_channels, Z, Y, X)``. With it: a list, full
            resolution logits first, then one ``(B, out_channels, Z/s, Y/s, X/s)`` per head from
            fine to coarse.
        """
        logits = self.unet.output_block(self.unet.skip_layers(x))
        if not deep_supervision:
            return logits
        if self.deep_supr_num == 0:
            return [logits]
        return [logits, *self.unet.heads[: self.deep_supr_num]]

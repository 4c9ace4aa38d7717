"""MedFuse multi-window variant: one encoder stem per CT window, Transfer Module fusion, shared U-Net."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import torch
from monai.networks.blocks import UnetBasicBlock
from torch import nn

from SlicerMedFuse.nets.fusion.transfer_module import TransferModule
from SlicerMedFuse.nets.hemorrhage.unet import HemorrhageUNet

__all__ = ["MultiWindowUNet"]


class MultiWindowUNet(nn.Module):
    """Each CT window (brain, subdural, bone, ...) is its own input path, fused by channel gating.

    Every input channel is one window of the same CT (see
    :func:`~SlicerMedFuse.hemorrhage.preprocessing.multi_window`). Path ``i`` is a small encoder stem
    (one DynUNet basic block: two 3D convolutions + instance norm + leaky ReLU) producing
    ``stem_channels`` features at full resolution. The Transfer Module (Gravina et al.) pools every
    path, computes one gate vector per path from *all* paths' descriptors and re-weights each path's
    channels ("cross-modality calibration"), so e.g. the bone window can damp or boost features of
    the subdural window near the skull. The calibrated paths are concatenated and segmented by one
    shared :class:`~SlicerMedFuse.nets.hemorrhage.unet.HemorrhageUNet`.

    Args:
        in_channels: Number of windows (paths), at least 2.
        out_channels: Classes including background (6 for BHSD).
        kernel_size: Per-level kernels of the shared U-Net (the stem uses the first).
        strides: Per-level strides of the shared U-Net.
        filters: Per-level channels of the shared U-Net.
        stem_channels: Feature channels per path.
        reduction: Transfer Module reduction (4 in the paper).
        deep_supr_num: Deep supervision heads of the shared U-Net (0 disables them).
        norm_name: Normalisation of stems and U-Net.
        res_block: Residual blocks in the shared U-Net.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[Sequence[int]],
        strides: Sequence[Sequence[int]],
        filters: Sequence[int],
        stem_channels: int = 8,
        reduction: int = 4,
        deep_supr_num: int = 2,
        norm_name: str = "instance",
        res_block: bool = False,
    ) -> None:
        super().__init__()
        if in_channels < 2:
            raise ValueError(f"a multi-window network needs at least 2 windows, got in_channels={in_channels}")
        if stem_channels < 1:
            raise ValueError(f"stem_channels must be >= 1, got {stem_channels}")
        self.paths = int(in_channels)
        self.stems = nn.ModuleList(
            UnetBasicBlock(3, 1, stem_channels, kernel_size=list(kernel_size[0]), stride=1, norm_name=norm_name)
            for _ in range(self.paths)
        )
        self.fusion = TransferModule([stem_channels] * self.paths, reduction=reduction)
        self.unet = HemorrhageUNet(
            self.paths * stem_channels,
            out_channels,
            kernel_size=kernel_size,
            strides=strides,
            filters=filters,
            deep_supr_num=deep_supr_num,
            norm_name=norm_name,
            res_block=res_block,
        )

    def fused_features(self, x: torch.Tensor) -> torch.Tensor:
        """The calibrated, concatenated path features ``(B, paths * stem_channels, Z, Y, X)``."""
        if x.ndim != 5 or x.shape[1] != self.paths:
            raise ValueError(f"expected input (B, {self.paths}, Z, Y, X), got {tuple(x.shape)}")
        features = [stem(x[:, i : i + 1]) for i, stem in enumerate(self.stems)]
        return torch.cat(self.fusion(features), dim=1)

    @overload
    def forward(self, x: torch.Tensor, deep_supervision: Literal[False] = False) -> torch.Tensor: ...

    @overload
    def forward(self, x: torch.Tensor, deep_supervision: Literal[True]) -> list[torch.Tensor]: ...

    def forward(self, x: torch.Tensor, deep_supervision: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Segment a batch of multi-window patches ``(B, paths, Z, Y, X)``; outputs as :class:`HemorrhageUNet`."""
        return self.unet(self.fused_features(x), deep_supervision=deep_supervision)

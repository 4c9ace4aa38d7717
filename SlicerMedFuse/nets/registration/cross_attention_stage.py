"""One resolution of TM-DCA's dual encoder: ``k`` deformable cross-attention blocks, then patch merging.

At each stage the paper applies "k successive deformable CA modules" (official config: 4, 4, 5)
with alternately regular and shifted windows, and halves the resolution between stages with
Swin's patch merging (MONAI's ``PatchMergingV2``: 2x2x2 neighbours concatenated, LayerNorm, a
linear map 8C -> 2C; official: one merging layer shared by the two encoders).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets.swin_unetr import PatchMergingV2
from torch import nn

from SlicerMedFuse.nets.registration.cross_attention_block import DeformableCrossAttentionBlock

__all__ = ["CrossAttentionStage"]


class CrossAttentionStage(nn.Module):
    """``depth`` blocks on the two token maps, then optional 2x downsampling.

    Args:
        dim: channels ``C`` of this stage.
        depth: number of blocks ``k``.
        num_heads: attention heads.
        window_size: window in tokens.
        offset_kernel: depth-wise kernel of the offset networks.
        drop_path: stochastic depth rate per block (``depth`` values).
        downsample: end with patch merging (all stages but the last).
        mlp_ratio, qkv_bias: as :class:`DeformableCrossAttentionBlock`.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: Sequence[int],
        offset_kernel: int,
        drop_path: Sequence[float],
        *,
        downsample: bool,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            DeformableCrossAttentionBlock(
                dim,
                num_heads,
                window_size,
                shifted=index % 2 == 1,
                offset_kernel=offset_kernel,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                drop_path=float(drop_path[index]),
            )
            for index in range(depth)
        )
        self.merge = PatchMergingV2(dim, norm_layer=nn.LayerNorm, spatial_dims=3) if downsample else None

    def forward(
        self, moving: torch.Tensor, fixed: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
        """Run the blocks.

        Args:
            moving, fixed: ``(B, D, H, W, C)`` token maps.

        Returns:
            ``((moving, fixed), (moving_down, fixed_down))``: the stage's output at its resolution
            (the skip features) and the input of the next stage (the same when not downsampling).
        """
        for block in self.blocks:
            moving, fixed = block(moving, fixed)
        if self.merge is None:
            return (moving, fixed), (moving, fixed)
        return (moving, fixed), (self.merge(moving), self.merge(fixed))

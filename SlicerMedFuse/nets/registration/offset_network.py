"""The offset network of TM-DCA's deformable cross-attention (Chen et al., MLMI 2023, Sect. 3, Fig. 2c).

The paper: "this network comprises two consecutive convolutional layers (depth-wise and regular
convolutional layers) and takes the added x_b and x_r as input", with "a different set of
Delta p_w for each head". Not stated in the paper, taken from the official code
(junyuchen245/TransMorph_DCA, ``Offset_block0`` and the block's ``offset_range``): the
depth-wise kernel per stage (7, 5, 3), a LayerNorm + GELU between the two convolutions (also
what the deformable attention of Xia et al. [27] uses), no biases, and the range: ``tanh`` scaled
to half the (padded) feature map per axis, so a token may be drawn from anywhere in the map.
The regular convolution's kernel is not stated; it is 1x1x1 here (the depth-wise + point-wise
pair). It starts at zero, so training begins from rectangular windows.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OffsetNetwork"]


class OffsetNetwork(nn.Module):
    """Per-head sampling offsets ``Delta p = theta(x_b + x_r)`` in token units.

    Args:
        channels: feature channels ``C`` of the base and reference.
        num_heads: attention heads (one offset field per head).
        kernel_size: depth-wise kernel edge (official: 7, 5, 3 for the three stages).
    """

    def __init__(self, channels: int, num_heads: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.num_heads = num_heads
        self.depthwise = nn.Conv3d(
            channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False
        )
        self.norm = nn.LayerNorm(channels)
        self.act = nn.GELU()
        self.pointwise = nn.Conv3d(channels, 3 * num_heads, kernel_size=1, bias=False)
        nn.init.zeros_(self.pointwise.weight)

    def forward(self, base: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Offsets for sampling the reference.

        Args:
            base, reference: ``(B, C, D, H, W)`` features (normalised, padded, shifted alike).

        Returns:
            ``(B, heads, 3, D, H, W)`` offsets along ``(D, H, W)`` in tokens, each within half the map's extent.
        """
        x = self.depthwise(base + reference)
        x = self.norm(x.movedim(1, -1)).movedim(-1, 1)
        raw = self.pointwise(self.act(x))
        b, _, d, h, w = raw.shape
        half_extent = torch.tensor([d, h, w], dtype=raw.dtype, device=raw.device).view(1, 1, 3, 1, 1, 1) * 0.5
        return torch.tanh(raw.view(b, self.num_heads, 3, d, h, w)) * half_extent

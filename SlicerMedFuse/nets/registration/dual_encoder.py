"""TM-DCA's two parallel Transformer encoders joined by deformable cross-attention (Chen et al., MLMI 2023, Fig. 2a).

Both images are cut into 4x4x4 patches embedded to ``embed_dim`` channels (MONAI's Swin
``PatchEmbed``; official: one embedding shared by the two images), then pass through the stages
of :class:`~SlicerMedFuse.nets.registration.cross_attention_stage.CrossAttentionStage`. At every
stage "the two paths' features are added and sent by skip connections" to the decoder, after a
LayerNorm per path (official code).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.blocks import PatchEmbed
from torch import nn

from SlicerMedFuse.nets.registration.cross_attention_stage import CrossAttentionStage

__all__ = ["DualCrossAttentionEncoder"]


class DualCrossAttentionEncoder(nn.Module):
    """Hierarchical features of a fixed/moving pair, fused per stage by addition.

    Args:
        patch_size: patch edge (paper config: 4).
        embed_dim: channels of the first stage (96); each stage doubles them.
        depths: blocks per stage (4, 4, 5).
        num_heads: heads per stage (8, 8, 8).
        window_size: window in tokens, the same at every stage (5, 6, 7).
        offset_kernels: depth-wise kernel of the offset networks per stage (7, 5, 3).
        mlp_ratio: MLP width over channels (4).
        qkv_bias: projection biases (False).
        drop_path_rate: stochastic depth, rising linearly to this over all blocks (official 0.3).
    """

    def __init__(
        self,
        patch_size: int = 4,
        embed_dim: int = 96,
        depths: Sequence[int] = (4, 4, 5),
        num_heads: Sequence[int] = (8, 8, 8),
        window_size: Sequence[int] = (5, 6, 7),
        offset_kernels: Sequence[int] = (7, 5, 3),
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        drop_path_rate: float = 0.3,
    ) -> None:
        super().__init__()
        if not len(depths) == len(num_heads) == len(offset_kernels):
            raise ValueError(
                f"depths, num_heads and offset_kernels need one value per stage, got {depths}, {num_heads}, {offset_kernels}"
            )
        if len(window_size) != 3:
            raise ValueError(f"window_size needs 3 values (D, H, W), got {window_size}")
        self.patch_embed = PatchEmbed(patch_size, 1, embed_dim, norm_layer=nn.LayerNorm, spatial_dims=3)
        total = sum(depths)  # plain floats: the network must also build on the meta device
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        self.channels = [embed_dim * 2**i for i in range(len(depths))]
        self.stages = nn.ModuleList()
        for i, (depth, heads, kernel) in enumerate(zip(depths, num_heads, offset_kernels, strict=True)):
            start = sum(depths[:i])
            self.stages.append(
                CrossAttentionStage(
                    self.channels[i],
                    depth,
                    heads,
                    window_size,
                    kernel,
                    rates[start : start + depth],
                    downsample=i < len(depths) - 1,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                )
            )
        self.moving_norms = nn.ModuleList(nn.LayerNorm(c) for c in self.channels)
        self.fixed_norms = nn.ModuleList(nn.LayerNorm(c) for c in self.channels)

    def forward(self, fixed: torch.Tensor, moving: torch.Tensor) -> list[torch.Tensor]:
        """Encode a pair.

        Args:
            fixed, moving: ``(B, 1, D, H, W)`` images.

        Returns:
            One fused ``(B, C_s, D / (4 * 2^s), H / ..., W / ...)`` map per stage ``s``, finest first.
        """
        m = self.patch_embed(moving).permute(0, 2, 3, 4, 1)
        f = self.patch_embed(fixed).permute(0, 2, 3, 4, 1)
        features = []
        for stage, moving_norm, fixed_norm in zip(self.stages, self.moving_norms, self.fixed_norms, strict=True):
            (m_out, f_out), (m, f) = stage(m, f)
            features.append((moving_norm(m_out) + fixed_norm(f_out)).permute(0, 4, 1, 2, 3).contiguous())
        return features

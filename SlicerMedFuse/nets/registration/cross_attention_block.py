"""One TM-DCA Transformer block: two paths of deformable cross-attention (Chen et al., MLMI 2023, Fig. 2a-b).

Path "moving" takes the moving features as base and the fixed ones as reference; path "fixed"
swaps them. Each path is a Swin block whose self-attention is replaced by
:class:`~SlicerMedFuse.nets.registration.deformable_cross_attention.DeformableWindowCrossAttention`:
``x_b <- x_b + DW-MCA(LN(x_b), LN(x_r))`` then ``x_b <- x_b + MLP(LN(x_b))``. Successive blocks
shift the windows by half (Swin). Windows larger than the map shrink to it and lose the shift
(Swin's rule, MONAI's ``get_window_size``); maps are zero-padded to whole windows.

Not stated in the paper, from the official code: each path has its own norms, projections, MLP
and offset network (two encoders), the relative position bias table is shared by the two paths,
MLP ratio 4, no query/key/value biases, stochastic depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.blocks import MLPBlock
from monai.networks.layers import DropPath
from monai.networks.nets.swin_unetr import compute_mask, get_window_size, window_partition, window_reverse
from torch import nn

from SlicerMedFuse.nets.registration.deformable_cross_attention import (
    DeformableWindowCrossAttention,
    sample_reference,
)
from SlicerMedFuse.nets.registration.offset_network import OffsetNetwork
from SlicerMedFuse.nets.registration.relative_position_bias import RelativePositionBias

__all__ = ["DeformableCrossAttentionBlock"]

_PATHS = ("moving", "fixed")


class _Path(nn.Module):
    """The weights of one path: norms, offset network, attention, MLP."""

    def __init__(
        self, dim: int, num_heads: int, offset_kernel: int, mlp_ratio: float, qkv_bias: bool, drop: float
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.offsets = OffsetNetwork(dim, num_heads, offset_kernel)
        self.attn = DeformableWindowCrossAttention(dim, num_heads, qkv_bias=qkv_bias, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio), dropout_rate=drop, act="GELU", dropout_mode="swin")


class DeformableCrossAttentionBlock(nn.Module):
    """Deformable cross-attention between the moving and fixed token maps.

    Args:
        dim: channels ``C``.
        num_heads: attention heads (paper config: 8).
        window_size: window ``(w_d, w_h, w_w)`` in tokens (paper config: (5, 6, 7)).
        shifted: shift the windows by half a window (odd blocks of a stage).
        offset_kernel: depth-wise kernel of the offset network.
        mlp_ratio: MLP hidden width over ``C``.
        qkv_bias: biases on the projections.
        drop_path: stochastic depth rate of this block.
        drop: dropout rate.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: Sequence[int],
        *,
        shifted: bool,
        offset_kernel: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        drop_path: float = 0.0,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = tuple(int(w) for w in window_size)
        self.shift_size = tuple(w // 2 for w in self.window_size) if shifted else (0, 0, 0)
        self.position_bias = RelativePositionBias(self.window_size, num_heads)
        self.paths = nn.ModuleDict(
            {name: _Path(dim, num_heads, offset_kernel, mlp_ratio, qkv_bias, drop) for name in _PATHS}
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, moving: torch.Tensor, fixed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update both token maps.

        Args:
            moving, fixed: ``(B, D, H, W, C)`` token maps of one size.

        Returns:
            The updated ``(moving, fixed)``, same shapes.
        """
        b, d, h, w, c = moving.shape
        window, shift = get_window_size((d, h, w), self.window_size, self.shift_size)
        pads = [(wn - n % wn) % wn for n, wn in zip((d, h, w), window, strict=True)]
        normed = {
            "moving": self.paths["moving"].norm1(moving),
            "fixed": self.paths["fixed"].norm1(fixed),
        }
        for name, x in normed.items():
            x = F.pad(x, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
            if any(shift):
                x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
            normed[name] = x
        dp, hp, wp = normed["moving"].shape[1:4]
        mask = compute_mask([dp, hp, wp], window, shift, moving.device) if any(shift) else None
        bias = self.position_bias(window)
        channels_first = {name: x.permute(0, 4, 1, 2, 3) for name, x in normed.items()}
        updated = []
        for name, other, stream in (("moving", "fixed", moving), ("fixed", "moving", fixed)):
            path = self.paths[name]
            offsets = path.offsets(channels_first[name], channels_first[other])
            reference = sample_reference(channels_first[other], offsets).permute(0, 2, 3, 4, 1)
            attended = path.attn(
                window_partition(normed[name], window), window_partition(reference, window), bias, mask
            )
            x = window_reverse(attended.view(-1, *window, c), window, [b, dp, hp, wp])
            if any(shift):
                x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
            x = stream + self.drop_path(x[:, :d, :h, :w, :])
            updated.append(x + self.drop_path(path.mlp(path.norm2(x))))
        return updated[0], updated[1]

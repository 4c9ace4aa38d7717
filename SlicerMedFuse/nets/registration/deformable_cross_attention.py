"""Deformable window-based multi-head cross-attention (DW-MCA), Eq. 2 of Chen et al., MLMI 2023.

For one path with base ``x_b`` and reference ``x_r``::

    [K_b, V_b] = WP(LN(x_b)) U_kv
    Delta p    = theta(x_b, x_r),   Delta p_w = WP(Delta p)
    Q_r        = psi(x_r; p + Delta p_w) U_q          (the paper prints U_k; U_q is meant)
    DW-MCA     = softmax(Q_r K_b^T / sqrt(D_k) + B) V_b

``psi`` is trilinear sampling of the reference at the rectangular window positions ``p`` moved by
the offsets, one offset field per head (channel group), done before partitioning, which the paper
notes is equivalent. ``B`` is Swin's relative position bias and, in shifted blocks, Swin's mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DeformableWindowCrossAttention", "sample_reference"]


def sample_reference(reference: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """``psi(x_r; p + Delta p)``: every token of each head's channel group read at its moved position.

    Args:
        reference: ``(B, C, D, H, W)`` reference features; ``C`` divisible by the heads.
        offsets: ``(B, heads, 3, D, H, W)`` offsets along ``(D, H, W)`` in tokens.

    Returns:
        ``(B, C, D, H, W)`` sampled features (zeros where a position leaves the map).
    """
    b, c, d, h, w = reference.shape
    heads = offsets.shape[1]
    grids = torch.meshgrid(
        *[torch.arange(n, device=reference.device, dtype=reference.dtype) for n in (d, h, w)], indexing="ij"
    )
    position = torch.stack(grids).unsqueeze(0) + offsets.reshape(b * heads, 3, d, h, w)
    # token index -> normalised coordinate with align_corners=True (index 0 -> -1, index n-1 -> 1)
    scale = torch.tensor([2.0 / max(n - 1, 1) for n in (d, h, w)], device=reference.device, dtype=reference.dtype)
    normalised = position * scale.view(1, 3, 1, 1, 1) - 1.0
    grid = normalised.flip(1).permute(0, 2, 3, 4, 1)  # grid_sample wants (x, y, z) = (W, H, D)
    sampled = F.grid_sample(
        reference.reshape(b * heads, c // heads, d, h, w),
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return sampled.reshape(b, c, d, h, w)


class DeformableWindowCrossAttention(nn.Module):
    """The attention of one path: queries from the deformed reference windows, keys and values from the base windows.

    Args:
        dim: channels ``C``.
        num_heads: heads (``C`` must be divisible by it).
        qkv_bias: biases on the query/key/value projections (official TM-DCA config: False).
        attn_drop, proj_drop: dropout rates.
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool = False, attn_drop: float = 0.0, proj_drop: float = 0.0
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.query = nn.Linear(dim, dim, bias=qkv_bias)
        self.key_value = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(
        self,
        base: torch.Tensor,
        reference: torch.Tensor,
        position_bias: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend within windows.

        Args:
            base: ``(B * nW, N, C)`` base windows (keys and values).
            reference: ``(B * nW, N, C)`` sampled reference windows (queries).
            position_bias: ``(heads, N, N)`` relative position bias.
            mask: ``(nW, N, N)`` shifted-window mask (0 or -100), or None.

        Returns:
            ``(B * nW, N, C)`` attended features at the base windows' positions.
        """
        bw, n, c = base.shape
        heads = self.num_heads
        q = self.query(reference).reshape(bw, n, heads, c // heads).transpose(1, 2)
        k, v = self.key_value(base).reshape(bw, n, 2, heads, c // heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1) + position_bias.unsqueeze(0)
        if mask is not None:
            windows = mask.shape[0]
            attn = attn.view(bw // windows, windows, heads, n, n) + mask.to(attn.dtype).unsqueeze(1).unsqueeze(0)
            attn = attn.view(bw, heads, n, n)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)
        return self.proj_drop(self.proj(out))

"""TM-DCA: TransMorph with deformable cross-attention (Chen, Liu, He, Du, MLMI 2023).

Dual Swin-style encoders whose self-attention is replaced by deformable window cross-attention
(:mod:`.deformable_cross_attention`), fused per stage by addition and decoded by TransMorph's
ConvNet decoder with a time-varying velocity head (:mod:`.decoder`). Defaults are the official
OASIS configuration (NOTES A1): patch 4, embed 96, depths (4, 4, 5), heads 8, windows (5, 6, 7),
offset kernels (7, 5, 3), MLP ratio 4, no qkv bias, drop path 0.3, 12 time steps, head 16.

Parameter count: 29,638,908 with these defaults (:func:`parameter_count`). The "about 15.2 M"
in the notes comes from a docstring of the official config ("Trainable params: 15,201,579") that
is the TransMorph template's, copied unchanged into many TransMorph-family configs with other
depths; it cannot be this architecture's count: the last stage alone (two paths x 5 blocks of
attention and MLP at 384 channels) holds 17.8 M weights in the official code as in this one.
Where our count differs from the official code it is by the offset networks (the paper's
depth-wise + point-wise pair on ``x_b + x_r``; the official ``Offset_block`` differs between
versions of the file) and the MONAI building blocks, which hold the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from SlicerMedFuse.nets.registration.decoder import TimeVaryingDecoder
from SlicerMedFuse.nets.registration.dual_encoder import DualCrossAttentionEncoder

__all__ = ["TransMorphDCA", "parameter_count"]

#: Input sizes must be multiples of this (patch 4 and two 2x mergings); inputs are padded to it.
_MULTIPLE = 16


class TransMorphDCA(nn.Module):
    """Deformable cross-attention registration network.

    Args:
        patch_size, embed_dim, depths, num_heads, window_size, offset_kernels, mlp_ratio, qkv_bias,
            drop_path_rate: the encoder's (:class:`DualCrossAttentionEncoder`); ``patch_size * 2^(stages - 1)``
            must be 16. The official window rule is the last stage's token grid, ``input_size / 16``
            per axis of the half-resolution input ((5, 6, 7) for OASIS's 160 x 192 x 224).
        time_steps: decoder refinement steps (12).
        head_channels: decoder head channels (16).
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
        time_steps: int = 12,
        head_channels: int = 16,
    ) -> None:
        super().__init__()
        if patch_size * 2 ** (len(depths) - 1) != _MULTIPLE:
            raise ValueError(
                f"patch_size {patch_size} with {len(depths)} stages downsamples by "
                f"{patch_size * 2 ** (len(depths) - 1)}; the decoder needs 16 (e.g. patch 4 and 3 stages)"
            )
        self.encoder = DualCrossAttentionEncoder(
            patch_size, embed_dim, depths, num_heads, window_size, offset_kernels, mlp_ratio, qkv_bias, drop_path_rate
        )
        self.decoder = TimeVaryingDecoder(self.encoder.channels, time_steps, head_channels)

    def forward(self, fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Predict the displacement that aligns ``moving`` to ``fixed``.

        Args:
            fixed: ``(B, 1, D, H, W)`` fixed image, intensities about 0..1.
            moving: ``(B, 1, D, H, W)`` moving image on the same grid.

        Returns:
            ``(B, 3, D, H, W)`` displacement ``u`` in voxels of the input grid. Channel ``c`` is
            the displacement along index axis ``c`` of ``(i, j, k) = (W, H, D)`` (grid_sample's
            x, y, z order), and the moving image is sampled at ``x + u(x)`` for every fixed voxel
            ``x`` (:func:`SlicerMedFuse.nets.warping.warp`), the convention of the
            instance-optimisation pipeline. Any size works: inputs are zero-padded to multiples
            of 16 and the field cropped back.
        """
        if fixed.shape != moving.shape or fixed.dim() != 5 or fixed.shape[1] != 1:
            raise ValueError(
                f"fixed and moving must both be (B, 1, D, H, W) of one shape, got {tuple(fixed.shape)} and {tuple(moving.shape)}"
            )
        size = fixed.shape[2:]
        pads = [(-n) % _MULTIPLE for n in size]
        if any(pads):
            padding = (0, pads[2], 0, pads[1], 0, pads[0])
            fixed, moving = F.pad(fixed, padding), F.pad(moving, padding)
        field = self.decoder(self.encoder(fixed, moving), fixed, moving)
        return field[:, :, : size[0], : size[1], : size[2]]


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

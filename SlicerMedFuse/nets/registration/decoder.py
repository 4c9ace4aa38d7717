"""TransMorph's ConvNet decoder with a time-varying velocity head, as TM-DCA uses on OASIS.

The paper: fused encoder features go "by skip connections to TransMorph's ConvNet decoder" [3, 4]
(field type not stated). The official OASIS code uses TransMorph-TVF [3]: three upsampling
blocks on the encoder features (skips at 1/8, 1/4 and a convolution of the half-resolution
image pair at 1/2), then ``time_steps`` (12) refinement steps at the input resolution. Step ``t``
convolves the moving image warped by the field so far together with the fixed image, upsamples the
shared decoder features with that skip, and predicts an increment ``v_t`` (head initialised
near zero) that is composed with the field.

Composition: here ``u <- v_t + u o (id + v_t)`` (:func:`~SlicerMedFuse.nets.warping.compose`),
the exact composition of the increment (estimated between the fixed image and the moving image
warped by ``u``) with the field so far. The official code adds ``u + v_t o (id + v_t)`` instead;
the two agree to first order.

Blocks: upsampling x2 (trilinear), concatenation, two 3x3x3 convolutions each followed by
instance norm and LeakyReLU (MONAI ``UnetBasicBlock``), as TransMorph's ``DecoderBlock``.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution, UnetBasicBlock
from torch import nn

from SlicerMedFuse.nets.warping import compose, warp

__all__ = ["ConvUpBlock", "TimeVaryingDecoder"]

_LEAKY = ("leakyrelu", {"negative_slope": 0.01, "inplace": True})


def _conv_norm_act(in_channels: int, out_channels: int) -> Convolution:
    return Convolution(3, in_channels, out_channels, kernel_size=3, act=_LEAKY, norm="instance", bias=False)


class ConvUpBlock(nn.Module):
    """Upsample x2, concatenate a skip, two conv-norm-act layers (TransMorph's ``DecoderBlock``)."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        self.convs = UnetBasicBlock(
            3, in_channels + skip_channels, out_channels, kernel_size=3, stride=1, norm_name="instance", act_name=_LEAKY
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class TimeVaryingDecoder(nn.Module):
    """Encoder features + image pair -> displacement at the input resolution.

    Args:
        channels: encoder channels per stage, finest first (e.g. 96, 192, 384).
        time_steps: refinement steps (official OASIS: 12).
        head_channels: channels of each step's last block (official: 16).
    """

    def __init__(self, channels: list[int], time_steps: int = 12, head_channels: int = 16) -> None:
        super().__init__()
        if len(channels) < 2:
            raise ValueError(f"the decoder needs at least two encoder stages, got {channels}")
        if time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        half = channels[0] // 2
        self.pair_skip = _conv_norm_act(2, half)
        self.pool = nn.AvgPool3d(3, stride=2, padding=1)
        ups = [ConvUpBlock(channels[i], channels[i - 1], channels[i - 1]) for i in range(len(channels) - 1, 0, -1)]
        self.ups = nn.ModuleList([*ups, ConvUpBlock(channels[0], half, half)])
        self.step_skips = nn.ModuleList(_conv_norm_act(2, half) for _ in range(time_steps))
        self.step_blocks = nn.ModuleList(ConvUpBlock(half, head_channels, half) for _ in range(time_steps))
        self.heads = nn.ModuleList(nn.Conv3d(head_channels, 3, kernel_size=3, padding=1) for _ in range(time_steps))
        for head in self.heads:  # near-identity start (official: N(0, 1e-5) weights, zero bias)
            nn.init.normal_(head.weight, std=1e-5)
            nn.init.zeros_(head.bias)

    def forward(self, features: list[torch.Tensor], fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Decode.

        Args:
            features: encoder maps, finest (1/4) first.
            fixed, moving: ``(B, 1, D, H, W)`` images, ``D, H, W`` multiples of 16.

        Returns:
            ``(B, 3, D, H, W)`` displacement in voxels, channels along ``(W, H, D)`` (see :mod:`.tm_dca`).
        """
        x = features[-1]
        for block, skip in zip(self.ups[:-1], reversed(features[:-1]), strict=True):
            x = block(x, skip)
        shared = self.ups[-1](x, self.pair_skip(self.pool(torch.cat([moving, fixed], dim=1))))
        field = torch.zeros((fixed.shape[0], 3, *fixed.shape[2:]), dtype=fixed.dtype, device=fixed.device)
        warped = moving
        for skip, block, head in zip(self.step_skips, self.step_blocks, self.heads, strict=True):
            increment = head(block(shared, skip(torch.cat([warped, fixed], dim=1))))
            field = compose(field, increment)
            warped = warp(moving, field)
        return field

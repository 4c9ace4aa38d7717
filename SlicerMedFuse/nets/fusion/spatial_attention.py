"""Master/assistant cross-modal spatial attention (the breast paper's SA block)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from monai.networks.layers.factories import Conv, Norm
from torch import nn

__all__ = ["MasterAssistantAttention", "MasterAssistantOutput", "SpatialAttentionMap"]


def _check_spatial_dims(spatial_dims: int) -> None:
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


class SpatialAttentionMap(nn.Module):
    """The SA block: a one-channel spatial weight map in ``(0, 1)`` computed from one feature map.

    Layers: 1x1 conv ``n -> n/r``, two 3x3 convs with dilation ``d`` (``n/r -> n/r``), 1x1 conv
    ``n/r -> 1``, batch norm, sigmoid. The paper defines the block only in its Fig. 3b; the public
    reference implementation has no nonlinearity between the convolutions, which is the default
    here (``act=None``); ``act="relu"`` inserts one after each hidden convolution.

    Reference: Li, Sun, Liu, Wang, Zheng, Wang, "Learning Cross-Modal Deep Representations for
    Multi-Modal MR Image Segmentation", MICCAI 2019, Fig. 3b (r = 16, d = 4).

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``n``.
        reduction: ``r``; hidden channels are ``max(1, n // r)``.
        dilation: ``d`` of the two 3x3 convolutions (padding keeps the spatial size).
        act: ``None`` or ``"relu"`` between the hidden convolutions.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, reduction: int = 16, dilation: int = 4, act: str | None = None
    ) -> None:
        super().__init__()
        _check_spatial_dims(spatial_dims)
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, got {reduction}")
        if dilation < 1:
            raise ValueError(f"dilation must be at least 1, got {dilation}")
        if act not in (None, "relu"):
            raise ValueError(f"act must be None or 'relu', got {act!r}")
        conv = Conv[Conv.CONV, spatial_dims]
        hidden = max(1, in_channels // reduction)

        def nonlinearity() -> nn.Module:
            return nn.ReLU(inplace=True) if act == "relu" else nn.Identity()

        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.layers = nn.Sequential(
            conv(in_channels, hidden, kernel_size=1),
            nonlinearity(),
            conv(hidden, hidden, kernel_size=3, dilation=dilation, padding=dilation),
            nonlinearity(),
            conv(hidden, hidden, kernel_size=3, dilation=dilation, padding=dilation),
            nonlinearity(),
            conv(hidden, 1, kernel_size=1),
            Norm[Norm.BATCH, spatial_dims](1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the map.

        Args:
            x: ``(B, n, *spatial)``.

        Returns:
            ``(B, 1, *spatial)``, values in ``(0, 1)``.
        """
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, {self.in_channels}, *spatial) with {self.spatial_dims} spatial dims, "
                f"got {tuple(x.shape)}"
            )
        return self.layers(x)


class MasterAssistantOutput(NamedTuple):
    """What :class:`MasterAssistantAttention` returns."""

    master: torch.Tensor
    """Re-weighted master features, shaped like the input."""
    assistants: list[torch.Tensor]
    """Re-weighted assistant features, shaped like the inputs."""
    attention: torch.Tensor
    """The map ``(B, 1, *spatial)`` computed from the master features."""


class MasterAssistantAttention(nn.Module):
    """Spatial attention computed from the master modality only, applied to master and assistants.

    The most informative sequence (the master, T1C in breast MRI) decides where to look: its
    features give the SA map, and that one map re-weights the master features and every
    assistant's (T2W) features ("attention transfer", in the spirit of knowledge distillation).
    The assistants never influence the map, so a noisy assistant cannot move the attention.

    Reference: Li et al., MICCAI 2019, Sect. 2 and Fig. 3a.

    Args:
        spatial_dims: 2 or 3.
        in_channels: channels of the master features.
        reduction: ``r`` of the SA block (16 in the paper).
        dilation: ``d`` of the SA block (4 in the paper).
        act: see :class:`SpatialAttentionMap`.
    """

    def __init__(
        self, spatial_dims: int, in_channels: int, reduction: int = 16, dilation: int = 4, act: str | None = None
    ) -> None:
        super().__init__()
        self.attention = SpatialAttentionMap(spatial_dims, in_channels, reduction, dilation, act)

    def forward(self, master: torch.Tensor, assistants: Sequence[torch.Tensor] = ()) -> MasterAssistantOutput:
        """Re-weight.

        Args:
            master: ``(B, C_m, *spatial)``.
            assistants: tensors ``(B, C_a, *spatial)`` (any channel count, same batch and spatial size).

        Returns:
            :class:`MasterAssistantOutput`.
        """
        if isinstance(assistants, torch.Tensor):
            assistants = (assistants,)
        for i, a in enumerate(assistants):
            if a.ndim != master.ndim or a.shape[0] != master.shape[0] or a.shape[2:] != master.shape[2:]:
                raise ValueError(
                    f"assistants[{i}] must have shape ({master.shape[0]}, C, {', '.join(map(str, master.shape[2:]))}) "
                    f"like the master features, got {tuple(a.shape)}"
                )
        attention = self.attention(master)
        return MasterAssistantOutput(master * attention, [a * attention for a in assistants], attention)

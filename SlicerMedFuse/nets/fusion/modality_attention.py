"""Modality-aware attention: per-modality spatial weights from joint features (MAML)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from monai.networks.layers.factories import Conv
from torch import nn

from SlicerMedFuse.nets.fusion.missing import mask_features, normalize_presence

__all__ = ["ModalityAttentionOutput", "ModalityAwareAttention"]


class ModalityAttentionOutput(NamedTuple):
    """What :class:`ModalityAwareAttention` returns."""

    fused: torch.Tensor
    """``F_att = sum_i A_i * F_i``, shape ``(B, C, *spatial)``."""
    weights: torch.Tensor
    """The attention maps ``A``, shape ``(B, N, *spatial)``; zero for absent modalities and summing
    to one over the present ones at every voxel."""


class ModalityAwareAttention(nn.Module):
    """Fuses N modality feature maps with voxel-wise weights predicted from their joint features.

    ``F_dual`` (the joint features: by default the concatenation of the modality features, or a
    tensor the caller computed, e.g. from an encoder that saw all modalities together) passes
    through a 3x3 convolution + ReLU and a 1x1 convolution to one logit map per modality; a
    softmax over modalities gives ``A_i`` and ``F_att = sum_i A_i * F_i``. The seminar notes leave
    the normalisation of ``A_i`` unstated; softmax is used here because it makes the presence mask
    exact: absent modalities get logit ``-inf``, hence weight 0, and the present modalities'
    weights renormalise to sum to one. Absent modalities' features are zeroed before they enter
    the default joint features, so they have no effect at all.

    Reference: Zhang, Yang, Tian, Shi, Zhong, Zhang, He, "Modality-Aware Mutual Learning for
    Multi-modal Medical Image Segmentation", MICCAI 2021 (MA module, Fig. 2).

    Args:
        spatial_dims: 2 or 3.
        in_channels: ``C`` of every modality's features.
        num_modalities: ``N`` (at least 2).
        joint_channels: channels of an explicit ``joint`` input; default ``N * C`` (concatenation).
        hidden_channels: channels after the 3x3 convolution; default ``C``.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        num_modalities: int,
        joint_channels: int | None = None,
        hidden_channels: int | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if num_modalities < 2:
            raise ValueError(f"num_modalities must be at least 2, got {num_modalities}")
        joint_channels = num_modalities * in_channels if joint_channels is None else joint_channels
        hidden_channels = in_channels if hidden_channels is None else hidden_channels
        if joint_channels < 1 or hidden_channels < 1:
            raise ValueError(
                f"joint_channels and hidden_channels must be at least 1, got {joint_channels}, {hidden_channels}"
            )
        conv = Conv[Conv.CONV, spatial_dims]
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.num_modalities = num_modalities
        self.joint_channels = joint_channels
        self.logits = nn.Sequential(
            conv(joint_channels, hidden_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            conv(hidden_channels, num_modalities, kernel_size=1),
        )

    def forward(
        self,
        features: Sequence[torch.Tensor],
        presence: torch.Tensor | None = None,
        joint: torch.Tensor | None = None,
    ) -> ModalityAttentionOutput:
        """Fuse.

        Args:
            features: ``N`` tensors ``(B, C, *spatial)``.
            presence: boolean ``(B, N)`` or ``(N,)``; default all present.
            joint: optional ``(B, joint_channels, *spatial)``; default the concatenation of the
                (masked) features.

        Returns:
            :class:`ModalityAttentionOutput`.
        """
        if isinstance(features, torch.Tensor) or len(features) != self.num_modalities:
            raise ValueError(f"features must be a sequence of {self.num_modalities} tensors, one per modality")
        shape = tuple(features[0].shape)
        if len(shape) != self.spatial_dims + 2 or shape[1] != self.in_channels:
            raise ValueError(
                f"features[0] must have shape (B, {self.in_channels}, *spatial) with {self.spatial_dims} spatial "
                f"dims, got {shape}"
            )
        for i, f in enumerate(features):
            if tuple(f.shape) != shape:
                raise ValueError(f"features[{i}] has shape {tuple(f.shape)}, expected {shape} like features[0]")
        mask = normalize_presence(presence, shape[0], self.num_modalities, device=features[0].device)
        features = mask_features(features, mask)
        if joint is None:
            joint = torch.cat(features, dim=1)
        elif tuple(joint.shape) != (shape[0], self.joint_channels, *shape[2:]):
            raise ValueError(
                f"joint must have shape {(shape[0], self.joint_channels, *shape[2:])}, got {tuple(joint.shape)}"
            )
        logits = self.logits(joint)
        absent = ~mask.reshape(*mask.shape, *([1] * self.spatial_dims))
        weights = torch.softmax(logits.masked_fill(absent, float("-inf")), dim=1)
        fused = (weights.unsqueeze(2) * torch.stack(features, dim=1)).sum(dim=1)
        return ModalityAttentionOutput(fused, weights)

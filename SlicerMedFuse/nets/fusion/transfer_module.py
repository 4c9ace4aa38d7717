"""The Transfer Module: cross-modality channel calibration between modality-specific paths."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from SlicerMedFuse.nets.fusion.missing import mask_features, normalize_presence

__all__ = ["TransferModule"]


class TransferModule(nn.Module):
    """Gates every path's channels with a vector computed from the descriptors of *all* paths.

    Each path's feature map is globally average-pooled; the descriptors are concatenated, passed
    through one shared FC layer to a quarter of their total length plus ReLU, and one FC + sigmoid
    head per path turns that shared representation into a gate vector in ``(0, 1)`` for the path's
    channels. Each path is multiplied channel-wise by its gate ("cross-modality calibration"):
    the least discriminative channels of one sequence are damped using what the other sequences
    show. Works for any number of paths, in 2D and 3D, and between paths whose spatial sizes
    differ (only pooled descriptors are exchanged).

    Reference: Gravina, Santucci, Cordelli, Soda, Sansone, "Cross-Modality Calibration in
    Multi-Input Network for Axillary Lymph Node Metastasis Evaluation" (Transfer Module);
    public code ``Michela94CE/Cross-Modality-Calibration-with-Transfer-Module``.

    Args:
        channels: channel count of each path, e.g. ``(256, 256, 256)`` for DCE, water and DWI paths.
        reduction: length of the shared representation is ``sum(channels) // reduction`` (4 in the
            paper).

    Example::

        tm = TransferModule((64, 64, 64))
        dce, water, dwi = tm([dce, water, dwi])   # each (B, 64, D, H, W), re-weighted
    """

    def __init__(self, channels: Sequence[int], reduction: int = 4) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if len(channels) < 1 or min(channels) < 1:
            raise ValueError(f"channels must list at least one positive channel count per path, got {channels}")
        if reduction < 1:
            raise ValueError(f"reduction must be at least 1, got {reduction}")
        self.channels = channels
        hidden = max(1, sum(channels) // reduction)
        self.shared = nn.Sequential(nn.Linear(sum(channels), hidden), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(hidden, c), nn.Sigmoid()) for c in channels)

    def _check(self, features: Sequence[torch.Tensor]) -> None:
        if isinstance(features, torch.Tensor) or len(features) != len(self.channels):
            raise ValueError(f"features must be a sequence of {len(self.channels)} tensors, one per path")
        batch = features[0].shape[0]
        for i, (f, c) in enumerate(zip(features, self.channels, strict=True)):
            if f.ndim < 3 or f.shape[1] != c or f.shape[0] != batch:
                raise ValueError(f"features[{i}] must have shape ({batch}, {c}, *spatial), got {tuple(f.shape)}")

    def gates(self, features: Sequence[torch.Tensor], presence: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The gate vectors, without applying them.

        Args:
            features: one tensor ``(B, C_i, *spatial_i)`` per path.
            presence: optional boolean ``(B, N)`` or ``(N,)``; absent paths contribute a zero
                descriptor, so they do not influence the other paths' gates.

        Returns:
            One tensor ``(B, C_i)`` per path, values in ``(0, 1)``.
        """
        self._check(features)
        if presence is not None:
            mask = normalize_presence(presence, features[0].shape[0], len(self.channels), device=features[0].device)
            features = mask_features(features, mask)
        descriptor = torch.cat([f.flatten(2).mean(dim=2) for f in features], dim=1)
        shared = self.shared(descriptor)
        return [head(shared) for head in self.heads]

    def forward(self, features: Sequence[torch.Tensor], presence: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Calibrate.

        Args:
            features: one tensor ``(B, C_i, *spatial_i)`` per path (2D or 3D).
            presence: optional boolean ``(B, N)`` or ``(N,)``; absent paths come back as zeros and
                do not affect the present ones.

        Returns:
            One tensor per path, shaped like its input.
        """
        gates = self.gates(features, presence)
        out = [f * g.reshape(*g.shape, *([1] * (f.ndim - 2))) for f, g in zip(features, gates, strict=True)]
        if presence is not None:
            out = mask_features(out, normalize_presence(presence, out[0].shape[0], len(out), device=out[0].device))
        return out

    def extra_repr(self) -> str:
        return f"channels={self.channels}"

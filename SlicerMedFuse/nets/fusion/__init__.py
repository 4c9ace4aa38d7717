"""Fusion blocks for multi-modal networks, 2D and 3D, robust to missing sequences.

- :class:`TransferModule`: cross-modality channel gating between modality-specific paths
  (Gravina et al., ALN metastasis).
- :class:`SpatialAttentionMap`, :class:`MasterAssistantAttention`: the SA block and the
  master/assistant spatial attention (Li et al., MICCAI 2019).
- :class:`ModalityAwareAttention`: per-modality attention maps from joint features (MAML,
  Zhang et al., MICCAI 2021).
- Missing sequences: :class:`ModalityDropout`, presence-mask utilities, and MagNET-style
  :class:`SharedEncoderFusion` / :class:`AttentionWeightedFusion`.

Every block that combines modalities accepts a presence mask (boolean ``(B, N)`` or ``(N,)``);
an absent modality's features have no effect on its output. Importing this package imports torch.
"""

from __future__ import annotations

from SlicerMedFuse.nets.fusion.missing import (
    AttentionWeightedFusion,
    ModalityDropout,
    SharedEncoderFusion,
    SharedEncoderOutput,
    mask_features,
    mask_modalities,
    normalize_presence,
    presence_subsets,
    sample_presence,
)
from SlicerMedFuse.nets.fusion.modality_attention import ModalityAttentionOutput, ModalityAwareAttention
from SlicerMedFuse.nets.fusion.spatial_attention import (
    MasterAssistantAttention,
    MasterAssistantOutput,
    SpatialAttentionMap,
)
from SlicerMedFuse.nets.fusion.transfer_module import TransferModule

__all__ = [
    "AttentionWeightedFusion",
    "MasterAssistantAttention",
    "MasterAssistantOutput",
    "ModalityAttentionOutput",
    "ModalityAwareAttention",
    "ModalityDropout",
    "SharedEncoderFusion",
    "SharedEncoderOutput",
    "SpatialAttentionMap",
    "TransferModule",
    "mask_features",
    "mask_modalities",
    "normalize_presence",
    "presence_subsets",
    "sample_presence",
]

"""The breast paper's network family and the registration of the fusion networks.

Networks (Li et al., MICCAI 2019, Table 1; inputs stacked on the channel axis, T1C master first):

- :class:`BreastUNet`: U-Net on one modality, optionally with SA blocks (U-Net + SA).
- :class:`EarlyFuseUNet`, :class:`LateFuseUNet`, :class:`FuseUNet`, :class:`FuseUNetSA`.
- :class:`MasterAssistantUNet`: the proposed master/assistant network; :class:`MasterAssistantUNet3d`
  its 3D variant. :class:`MultiStreamUNet` is the configurable core they share.

Importing this package does not import torch: the classes load on first access, and
:func:`register_fusion_architectures` registers lazy ``"module:Class"`` references.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "BreastUNet",
    "EarlyFuseUNet",
    "FuseUNet",
    "FuseUNetSA",
    "LateFuseUNet",
    "MasterAssistantUNet",
    "MasterAssistantUNet3d",
    "MultiStreamUNet",
    "register_fusion_architectures",
]

_CLASSES = {
    "BreastUNet": "SlicerMedFuse.nets.breast.unet",
    "EarlyFuseUNet": "SlicerMedFuse.nets.breast.unet",
    "FuseUNet": "SlicerMedFuse.nets.breast.fuse_unet",
    "FuseUNetSA": "SlicerMedFuse.nets.breast.fuse_unet",
    "LateFuseUNet": "SlicerMedFuse.nets.breast.fuse_unet",
    "MasterAssistantUNet": "SlicerMedFuse.nets.breast.fuse_unet",
    "MasterAssistantUNet3d": "SlicerMedFuse.nets.breast.fuse_unet",
    "MultiStreamUNet": "SlicerMedFuse.nets.breast.multistream",
}

#: Manifest name -> lazy constructor reference, for the architecture allowlist.
ARCHITECTURES: dict[str, str] = {
    "medfuse.BreastUNet2d": "SlicerMedFuse.nets.breast.unet:BreastUNet",
    "medfuse.BreastEarlyFuseUNet2d": "SlicerMedFuse.nets.breast.unet:EarlyFuseUNet",
    "medfuse.BreastLateFuseUNet2d": "SlicerMedFuse.nets.breast.fuse_unet:LateFuseUNet",
    "medfuse.BreastFuseUNet2d": "SlicerMedFuse.nets.breast.fuse_unet:FuseUNet",
    "medfuse.BreastFuseUNetSA2d": "SlicerMedFuse.nets.breast.fuse_unet:FuseUNetSA",
    "medfuse.BreastMasterAssistantUNet2d": "SlicerMedFuse.nets.breast.fuse_unet:MasterAssistantUNet",
    "medfuse.BreastMasterAssistantUNet3d": "SlicerMedFuse.nets.breast.fuse_unet:MasterAssistantUNet3d",
    "medfuse.MultiStreamUNet": "SlicerMedFuse.nets.breast.multistream:MultiStreamUNet",
    "medfuse.TransferModuleClassifier": "SlicerMedFuse.nets.classifier.transfer_classifier:TransferModuleClassifier",
}


def register_fusion_architectures() -> None:
    """Add the fusion networks to the architecture allowlist (idempotent; imports no torch)."""
    from SlicerMedFuse.nets.registry import register_architecture

    for name, reference in ARCHITECTURES.items():
        register_architecture(name, reference)


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Hemorrhage CT networks: an nnU-Net-like 3D U-Net (BHSD) and its multi-window fusion variant.

- :class:`HemorrhageUNet`: MONAI's DynUNet with an nnU-Net-style plan (:func:`plan_unet`) and
  deep supervision heads at their own resolution (targets are downsampled, as in nnU-Net).
- :class:`MultiWindowUNet`: one small encoder stem per CT window (brain, subdural, bone, ...),
  the stems' features calibrated by the Transfer Module, then one shared :class:`HemorrhageUNet`.

Importing this package does not import torch: the classes load on first access, and
:func:`register_hemorrhage_architectures` registers lazy ``"module:Class"`` references.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "HemorrhageUNet",
    "MultiWindowUNet",
    "plan_unet",
    "register_hemorrhage_architectures",
]

_ATTRIBUTES = {
    "HemorrhageUNet": "SlicerMedFuse.nets.hemorrhage.unet",
    "MultiWindowUNet": "SlicerMedFuse.nets.hemorrhage.multi_window",
    "plan_unet": "SlicerMedFuse.nets.hemorrhage.plan",
}

#: Manifest name -> lazy constructor reference, for the architecture allowlist.
ARCHITECTURES: dict[str, str] = {
    "medfuse.HemorrhageUNet": "SlicerMedFuse.nets.hemorrhage.unet:HemorrhageUNet",
    "medfuse.MultiWindowHemorrhageUNet": "SlicerMedFuse.nets.hemorrhage.multi_window:MultiWindowUNet",
}


def register_hemorrhage_architectures() -> None:
    """Add the hemorrhage networks to the architecture allowlist (idempotent; imports no torch)."""
    from SlicerMedFuse.nets.registry import register_architecture

    for name, reference in ARCHITECTURES.items():
        register_architecture(name, reference)


def __getattr__(name: str) -> Any:
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

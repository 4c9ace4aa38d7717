"""Learned registration networks: TM-DCA, TransMorph with deformable cross-attention (Chen et al., MLMI 2023).

- :class:`TransMorphDCA`: the full network, ``(fixed, moving) -> displacement`` in voxels.
- Its parts, one concept per module: :mod:`.offset_network`, :mod:`.relative_position_bias`,
  :mod:`.deformable_cross_attention` (DW-MCA, Eq. 2), :mod:`.cross_attention_block`,
  :mod:`.cross_attention_stage`, :mod:`.dual_encoder`, :mod:`.decoder`.

Importing this package does not import torch: classes load on first access, and
:func:`register_registration_architectures` registers lazy ``"module:Class"`` references.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ARCHITECTURES", "TransMorphDCA", "parameter_count", "register_registration_architectures"]

_ATTRIBUTES = {
    "TransMorphDCA": "SlicerMedFuse.nets.registration.tm_dca",
    "parameter_count": "SlicerMedFuse.nets.registration.tm_dca",
}

#: Manifest name -> lazy constructor reference, for the architecture allowlist.
ARCHITECTURES: dict[str, str] = {"medfuse.TransMorphDCA": "SlicerMedFuse.nets.registration.tm_dca:TransMorphDCA"}


def register_registration_architectures() -> None:
    """Add the registration networks to the architecture allowlist (idempotent; imports no torch)."""
    from SlicerMedFuse.nets.registry import register_architecture

    for name, reference in ARCHITECTURES.items():
        register_architecture(name, reference)


def __getattr__(name: str) -> Any:
    if name in _ATTRIBUTES:
        return getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Network architectures: the registry bundles name, and the project's paper networks.

Importing this package does not import torch; :func:`build_network` does.
"""

from __future__ import annotations

from SlicerMedFuse.nets.registry import build_network, is_registered, known_architectures, register_architecture

__all__ = ["build_network", "is_registered", "known_architectures", "register_architecture"]

"""How big a bundle's network would be, known before it is built: shapes on torch's meta device.

A manifest's architecture arguments decide the network's size (``"channels": [32768, ...]`` asks
for tens of billions of parameters). Building such a network for real exhausts memory before any
check could run, so :func:`planned_network_shapes` builds it on the ``meta`` device (shapes only,
no memory, no initialisation), sums the bytes of its parameters and buffers, and refuses a network
larger than the budget: half of the memory available now, and never more than
:data:`MAX_NETWORK_BYTES`. Every architecture in the registry builds on the meta device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from SlicerMedFuse.errors import ModelError
from SlicerMedFuse.nets.registry import build_network

__all__ = ["MAX_NETWORK_BYTES", "network_budget_bytes", "planned_network_shapes"]

#: Upper bound on a bundle network's weights (bytes), whatever the machine: 16 GiB, ~4e9 float32 values.
MAX_NETWORK_BYTES = 16 * 2**30


def _available_memory_bytes() -> int | None:
    """Memory available to a new allocation (Linux: MemAvailable, which counts reclaimable cache)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def network_budget_bytes() -> int:
    """The most bytes a bundle's network may take: half the available memory, at most 16 GiB."""
    available = _available_memory_bytes()
    return MAX_NETWORK_BYTES if available is None else min(MAX_NETWORK_BYTES, available // 2)


def planned_network_shapes(
    name: str, args: Mapping[str, Any], *, budget_bytes: int | None = None
) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of architecture ``name`` with ``args``, refused when over the budget.

    Args:
        name: a registered architecture name.
        args: its constructor arguments (from the manifest).
        budget_bytes: the largest network allowed (bytes of parameters and buffers); default
            :func:`network_budget_bytes`.

    Returns:
        State-dict key -> shape, as the network built for real would have.

    Raises:
        ModelError: the arguments are invalid, or the network would need more bytes than the budget.
    """
    import torch

    with torch.device("meta"):
        network = build_network(name, args)
    state = network.state_dict()
    needed = sum(tensor.numel() * tensor.element_size() for tensor in state.values())
    budget = network_budget_bytes() if budget_bytes is None else budget_bytes
    if needed > budget:
        parameters = sum(tensor.numel() for tensor in state.values())
        raise ModelError(
            f"The architecture '{name}' with the manifest's arguments would have {parameters:,} weights "
            f"({needed / 2**30:.1f} GiB), more than the {budget / 2**30:.1f} GiB this machine allows a model; "
            "the bundle is broken or not meant for this machine, get a fitting one."
        )
    return {key: tuple(tensor.shape) for key, tensor in state.items()}

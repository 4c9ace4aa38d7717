"""How many cases a machine runs at once, and how many CPU threads each gets."""

from __future__ import annotations

import os

__all__ = ["MEMORY_PER_WORKER_GIB", "default_workers", "threads_per_worker"]

#: Memory one worker is budgeted (GiB): a CT volume, its float copies and a network's activations on CPU.
MEMORY_PER_WORKER_GIB = 3.0


def _available_memory_gib() -> float | None:
    try:
        import psutil  # a dependency of dask distributed; optional for the local pool
    except ImportError:
        return None
    return psutil.virtual_memory().available / 2**30


def default_workers() -> int:
    """Worker processes for this machine: one per core, fewer when memory is short (at least 1).

    Returns:
        ``min(cores, available memory / MEMORY_PER_WORKER_GIB)``, at least 1.
    """
    cores = os.cpu_count() or 1
    memory = _available_memory_gib()
    by_memory = cores if memory is None else int(memory // MEMORY_PER_WORKER_GIB)
    return max(1, min(cores, by_memory))


def threads_per_worker(workers: int) -> int:
    """CPU threads for torch in each of ``workers`` processes, so that together they use each core once."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))

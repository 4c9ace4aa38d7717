"""Compute device selection: ``auto|cuda|mps|cpu``, CPU threads, AMP, and out-of-memory handling.

torch is imported lazily so that commands that do not compute (``medfuse tasks``) start fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from SlicerMedFuse.errors import ResourceError, UsageError

__all__ = ["DEVICE_CHOICES", "DeviceConfig", "autocast", "available_devices", "out_of_memory_guard", "resolve_device"]

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """A resolved device.

    Attributes:
        name: torch device string, e.g. ``"cpu"``, ``"cuda:0"``, ``"mps"``.
        kind: ``"cpu"``, ``"cuda"`` or ``"mps"``.
        threads: CPU threads torch uses (intra-op).
        amp: whether mixed precision (float16 autocast) is used; only ever on CUDA.
    """

    name: str
    kind: str
    threads: int
    amp: bool

    def torch_device(self) -> Any:
        import torch

        return torch.device(self.name)

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def available_devices() -> dict[str, Any]:
    """What this machine offers (for ``medfuse info``)."""
    import torch

    cuda = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            cuda.append({"index": index, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return {"cpu": {"threads": torch.get_num_threads(), "cores": os.cpu_count()}, "cuda": cuda, "mps": mps}


def resolve_device(choice: str = "auto", *, threads: int | None = None, amp: bool | None = None) -> DeviceConfig:
    """Turn a user choice into a usable device and configure torch for it.

    Args:
        choice: ``auto`` (CUDA, else MPS, else CPU), ``cuda``, ``cuda:N``, ``mps`` or ``cpu``.
        threads: CPU threads for torch; None keeps torch's default (the number of cores).
        amp: mixed precision; None means on for CUDA, off elsewhere (CPU/MPS autocast is not worth it).

    Raises:
        UsageError: unknown choice.
        ResourceError: the requested accelerator is not available.
    """
    import torch

    base = choice.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise UsageError(f"Device must be one of {', '.join(DEVICE_CHOICES)} (or cuda:N); got {choice!r}.")
    if threads is not None:
        if threads < 1:
            raise UsageError(f"Threads must be at least 1; got {threads}.")
        torch.set_num_threads(threads)
    mps_ok = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if base == "auto":
        base = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
        choice = base
    if base == "cuda" and not torch.cuda.is_available():
        raise ResourceError("CUDA was requested but no CUDA GPU is available to torch; use --device cpu.")
    if base == "mps" and not mps_ok:
        raise ResourceError("MPS was requested but is not available on this machine; use --device cpu.")
    if base == "cuda" and choice == "cuda":
        choice = "cuda:0"
    use_amp = (base == "cuda") if amp is None else (amp and base == "cuda")
    return DeviceConfig(name=choice, kind=base, threads=torch.get_num_threads(), amp=use_amp)


def autocast(device: DeviceConfig) -> contextlib.AbstractContextManager:
    """float16 autocast on CUDA when AMP is on; a no-op elsewhere."""
    if device.amp and device.kind == "cuda":
        import torch

        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def out_of_memory_guard(device: DeviceConfig) -> Iterator[None]:
    """Turn torch's out-of-memory errors into a :class:`ResourceError` that offers the fix."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as error:
        if device.kind == "cuda":
            torch.cuda.empty_cache()
            raise ResourceError(
                "The GPU ran out of memory; run again with --device cpu (slower) or close other GPU programs."
            ) from error
        raise ResourceError("The computer ran out of memory; close other programs or use a smaller image.") from error
    except MemoryError as error:
        raise ResourceError("The computer ran out of memory; close other programs or use a smaller image.") from error

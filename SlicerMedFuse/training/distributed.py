"""Multi-process training through torchrun / DistributedDataParallel (one process per GPU or CPU slot).

``torchrun --nproc_per_node N -m SlicerMedFuse train ...`` (or multi-node with ``--nnodes`` and a
rendezvous address) starts N processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them. Without them training
runs as a single process. The backend is NCCL on CUDA and gloo on CPU (gloo is what the tests use
with two CPU processes).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import TYPE_CHECKING, Any

from SlicerMedFuse.errors import ResourceError, UsageError

if TYPE_CHECKING:
    import torch

    from SlicerMedFuse.device import DeviceConfig

__all__ = ["DistributedContext", "init_distributed"]


@dataclasses.dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) training job.

    Attributes:
        rank: Global rank (0 for a single process).
        world_size: Number of processes.
        local_rank: Rank on this node (selects the GPU).
        device: The torch device string this process computes on.
        backend: ``"gloo"``, ``"nccl"`` or ``""`` for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    backend: str = ""

    @property
    def is_main(self) -> bool:
        """True on rank 0 (it writes checkpoints, logs and the bundle)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op for a single process)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over all processes."""
        if not self.distributed:
            return float(value)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(
            [float(value)], dtype=torch.float64, device=self.device if self.backend == "nccl" else "cpu"
        )
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process (picklable Python objects made by this program only)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel when distributed, else unchanged."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def close(self) -> None:
        """Leave the process group (safe to call more than once)."""
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise UsageError(f"Environment variable {name} must be an integer (set by torchrun); got {value!r}.") from None


def init_distributed(device: DeviceConfig, timeout_s: float = 1800.0) -> DistributedContext:
    """Join the torchrun process group if there is one.

    Args:
        device: The resolved device; with CUDA each process takes GPU ``LOCAL_RANK``.
        timeout_s: How long collective operations may wait (s).

    Returns:
        The :class:`DistributedContext` (single process when ``WORLD_SIZE`` is unset or 1).

    Raises:
        ResourceError: Fewer GPUs than processes on this node, or the group cannot be joined.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext(device=device.name)
    import torch
    import torch.distributed as dist

    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if device.kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ResourceError(
                f"Process {local_rank} on this node has no GPU ({torch.cuda.device_count()} found); "
                "start at most one process per GPU (torchrun --nproc_per_node)."
            )
        torch.cuda.set_device(local_rank)
        backend, name = "nccl", f"cuda:{local_rank}"
    else:
        backend, name = "gloo", device.name
    try:
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError) as error:
        raise ResourceError(
            f"The distributed process group could not be joined ({error}); check torchrun's settings."
        ) from None
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=name, backend=backend)

"""A generic epoch/iteration training loop: optimizer, poly learning rate, checkpoints, resume, DDP, progress.

The task-specific part is a :class:`TrainingStep`: given the (possibly DDP-wrapped) model, the
iteration and a random generator, it draws its own batch and returns the loss. The loop does the
rest, as nnU-Net does: SGD with Nesterov momentum 0.99 (or AdamW), learning rate
``lr * (1 - epoch / epochs) ** 0.9``, gradient clipping at 12, a checkpoint after every epoch
(rank 0, safetensors + JSON, see :mod:`SlicerMedFuse.training.checkpoint`) and an exact resume at
an epoch boundary: every epoch's random generator is derived from ``(seed, epoch, rank)``, so a
resumed run samples the same batches as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.checkpoint import load_checkpoint, save_checkpoint
from SlicerMedFuse.training.distributed import DistributedContext

__all__ = ["TrainerConfig", "TrainingResult", "TrainingStep", "epoch_generator", "train"]


class TrainingStep(Protocol):
    """One optimisation step's forward pass: draw a batch, return ``(loss, logged values)``."""

    def __call__(
        self, model: torch.nn.Module, iteration: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Settings of :func:`train`.

    Attributes:
        epochs: Number of epochs.
        iterations_per_epoch: Optimisation steps per epoch and process (nnU-Net: 250).
        optimizer: ``"sgd"`` (nnU-Net: Nesterov, momentum 0.99) or ``"adamw"``.
        learning_rate: Initial learning rate (nnU-Net SGD: 1e-2; AdamW: about 1e-3).
        weight_decay: Weight decay (nnU-Net: 3e-5).
        momentum: SGD momentum.
        grad_clip: Gradient norm clipping (0 disables it).
        seed: Seed of initialisation and sampling.
        amp: Mixed precision (float16 autocast with gradient scaling; CUDA only).
    """

    epochs: int = 100
    iterations_per_epoch: int = 250
    optimizer: Literal["sgd", "adamw"] = "sgd"
    learning_rate: float = 1e-2
    weight_decay: float = 3e-5
    momentum: float = 0.99
    grad_clip: float = 12.0
    seed: int = 0
    amp: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.iterations_per_epoch < 1:
            raise UsageError("Training needs at least one epoch and one iteration per epoch.")
        if self.optimizer not in ("sgd", "adamw"):
            raise UsageError(f"The optimizer must be sgd or adamw; got {self.optimizer!r}.")
        if not self.learning_rate > 0:
            raise UsageError(f"The learning rate must be > 0; got {self.learning_rate}.")

    def learning_rate_at(self, epoch: int) -> float:
        """Polynomial decay ``lr * (1 - epoch / epochs) ** 0.9`` (nnU-Net)."""
        return self.learning_rate * (1.0 - epoch / self.epochs) ** 0.9


@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes:
        history: One record per epoch (``epoch``, ``loss``, ``lr``, ``seconds`` and the step's logs).
        epochs_done: Epochs completed, including resumed ones.
        seconds: Wall time of this run (s).
        resumed_from: Epoch the run resumed after, or None.
    """

    history: list[dict[str, Any]]
    epochs_done: int
    seconds: float
    resumed_from: int | None = None


def _optimizer(model: torch.nn.Module, config: TrainerConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(),
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=True,
            weight_decay=config.weight_decay,
        )
    return torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)


def epoch_generator(seed: int, epoch: int, rank: int) -> np.random.Generator:
    """The random generator of one epoch on one process (independent of earlier epochs)."""
    return np.random.default_rng([seed, epoch, rank])


def train(
    model: torch.nn.Module,
    step: TrainingStep,
    config: TrainerConfig,
    *,
    checkpoint_dir: str | Path,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    run_state: dict[str, Any] | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainingResult:
    """Train ``model`` in place.

    Args:
        model: The network, already on ``dist.device`` and initialised identically on every
            process (seed before building it). It is wrapped in DDP here when distributed.
        step: Draws a batch and returns the loss (see :class:`TrainingStep`).
        config: Loop settings.
        checkpoint_dir: Folder for ``latest/`` (written after every epoch by rank 0).
        dist: The process group context (single process when None).
        progress: Progress reporting; rank 0 only reports. Cancellation raises ``Cancelled``
            at the next iteration; the last completed epoch stays in ``latest/``.
        resume: Continue from ``checkpoint_dir/latest`` when it exists.
        run_state: Extra JSON-ready values stored in every checkpoint (e.g. the run's settings).
        on_epoch_end: Called on rank 0 with ``(epoch, record)`` after each checkpoint.

    Returns:
        A :class:`TrainingResult`.
    """
    dist = dist or DistributedContext()
    progress = progress if (progress is not None and dist.is_main) else Progress()
    latest = Path(checkpoint_dir) / "latest"
    optimizer = _optimizer(model, config)
    history: list[dict[str, Any]] = []
    start_epoch, resumed_from = 0, None
    if resume and latest.is_dir():
        state = load_checkpoint(latest, model, optimizer)
        history = list(state.get("history", []))
        start_epoch = resumed_from = int(state["epoch"]) + 1
        progress.log(f"resuming after epoch {start_epoch} from {latest}")
    wrapped = dist.wrap(model)
    use_amp = config.amp and dist.device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    started = time.perf_counter()
    total = config.epochs * config.iterations_per_epoch
    for epoch in range(start_epoch, config.epochs):
        lr = config.learning_rate_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rng = epoch_generator(config.seed, epoch, dist.rank)
        wrapped.train()
        epoch_started, losses, logs = time.perf_counter(), [], {}
        for iteration in range(config.iterations_per_epoch):
            done = epoch * config.iterations_per_epoch + iteration
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                loss, values = step(wrapped, done, rng)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at epoch {epoch}, iteration {iteration}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(wrapped.parameters(), config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            for key, value in values.items():
                logs.setdefault(key, []).append(float(value))
            progress.update((done + 1) / total, "training", f"epoch {epoch + 1}/{config.epochs} loss {losses[-1]:.4f}")
        record = {
            "epoch": epoch,
            "loss": dist.mean(float(np.mean(losses))),
            "lr": lr,
            "seconds": round(time.perf_counter() - epoch_started, 2),
            **{key: dist.mean(float(np.mean(v))) for key, v in logs.items()},
        }
        history.append(record)
        if dist.is_main:
            save_checkpoint(latest, model, optimizer, {"epoch": epoch, "history": history, "run": run_state or {}})
            progress.log(
                f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.4f}, lr {lr:.2e}, {record['seconds']} s"
            )
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
        dist.barrier()
    return TrainingResult(
        history=history, epochs_done=config.epochs, seconds=time.perf_counter() - started, resumed_from=resumed_from
    )

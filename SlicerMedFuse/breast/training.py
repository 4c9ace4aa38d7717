"""Train a breast-mass network (the breast paper's family) on an nnU-Net layout and write its bundle.

``medfuse train breast-mass --data DIR --output DIR`` runs :func:`train_breast_mass`:

1. read the nnU-Net raw dataset and map its channel names to the roles T1C / T2W / PRE
   (:func:`~SlicerMedFuse.breast.training_data.channel_roles`);
2. load every axial slice, normalised and resized as inference will (:class:`BreastPreprocessing`);
3. build one of the paper's networks through the architecture allowlist (``--architecture``:
   ``unet`` on T1C alone, ``earlyfuse``, ``latefuse``, ``fuseunet``, ``fuseunet-sa``, ``proposed``),
   optionally at a fraction of the paper's widths (``width_divisor``);
4. train with the paper's loss (Dice + alpha * CE, eps = 1, alpha = 1, Eq. 1) on batches of 4
   slices (the paper's batch size), slices with a mass drawn with ``foreground_probability``;
   assistant sequences are dropped with ``modality_dropout`` (MagNET-style modality dropout) so the
   network copes with a missing T2W; generic loop (checkpoints, resume, DDP) from
   :mod:`SlicerMedFuse.training.trainer`;
5. save the bundle (manifest: preprocessing, architecture, training data, ``simulated``).

The paper trains with Adam (AMSGrad), lr 1e-4 halved every 30 epochs, for an unstated number of
epochs; the generic loop offers Adam(W) with nnU-Net's polynomial decay, so the default here is
AdamW without weight decay (= Adam) at lr 1e-4 with that decay.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from SlicerMedFuse.breast.architectures import ARCHITECTURES
from SlicerMedFuse.breast.labels import MASS_LABELS
from SlicerMedFuse.breast.model_input import BreastPreprocessing
from SlicerMedFuse.breast.provenance import PHANTOM_DATA_NOTE
from SlicerMedFuse.breast.training_data import SliceSet, channel_roles, load_slices
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.distributed import DistributedContext
from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset
from SlicerMedFuse.training.trainer import TrainerConfig

__all__ = ["ARCHITECTURES", "BreastTrainingConfig", "bundle_manifest", "network_definition", "train_breast_mass"]

#: Paper-style names of the architectures (benchmark tables).
TITLES = {
    "unet": "U-Net (T1C)",
    "earlyfuse": "EarlyFuseUNet",
    "latefuse": "LateFuseUNet",
    "fuseunet": "FuseUNet",
    "fuseunet-sa": "FuseUNet + SA",
    "proposed": "Proposed (master/assistant SA)",
}


@dataclasses.dataclass(frozen=True)
class BreastTrainingConfig:
    """Everything that defines a breast-mass training run.

    Attributes:
        architecture: A key of :data:`ARCHITECTURES`.
        width_divisor: Divide the paper's widths by this (1: Table 1 sizes; more for CPU runs).
        in_plane_size: Slice size the network sees (paper: 256).
        use_subtraction: Add the ``t1c - pre`` channel when the dataset has PRE (fusion networks only).
        batch_size: Slices per step (paper: 4).
        foreground_probability: Share of slices drawn from those holding a mass.
        modality_dropout: Drop probability of each assistant sequence per slice (0 disables).
        trainer: Loop settings (epochs, iterations, optimizer, learning rate, seed).
        model_id: Bundle id.
        version: Bundle version.
        title: Bundle title.
        license: Licence of the weights.
        intended_use: Intended-use text (default depends on ``simulated``).
    """

    architecture: str = "proposed"
    width_divisor: int = 1
    in_plane_size: int = 256
    use_subtraction: bool = False
    batch_size: int = 4
    foreground_probability: float = 0.67
    modality_dropout: float = 0.2
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(
            epochs=50, iterations_per_epoch=100, optimizer="adamw", learning_rate=1e-4, weight_decay=0.0
        )
    )
    model_id: str = "medfuse-breast-mass"
    version: str = "0.1.0"
    title: str = "Breast mass segmentation (T1C master, T2W assistant)"
    license: str = "LicenseRef-see-training-data"
    intended_use: str = ""

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise UsageError(f"The architecture must be one of {', '.join(ARCHITECTURES)}; got {self.architecture!r}.")
        widths = ARCHITECTURES[self.architecture][1]
        if self.width_divisor < 1 or any(w % self.width_divisor for w in widths):
            raise UsageError(f"width_divisor must divide the widths {widths}; got {self.width_divisor}.")
        if self.batch_size < 1:
            raise UsageError("The batch size must be at least 1.")
        if not 0.0 <= self.foreground_probability <= 1.0 or not 0.0 <= self.modality_dropout < 1.0:
            raise UsageError("foreground_probability must be in [0, 1] and modality_dropout in [0, 1).")


def network_definition(config: BreastTrainingConfig, channels: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """The allowlisted architecture name and its JSON-ready constructor arguments."""
    name, widths, single = ARCHITECTURES[config.architecture]
    args: dict[str, Any] = {
        "in_channels": 1,
        "out_channels": 1,
        "features": [w // config.width_divisor for w in widths],
    }
    if not single:
        args["num_modalities"] = len(channels)
    return name, args


def model_channels(config: BreastTrainingConfig, roles: Sequence[str]) -> tuple[str, ...]:
    """Network channels for the dataset's roles: T1C alone for the U-Net, else T1C, T2W (+ subtraction)."""
    if ARCHITECTURES[config.architecture][2]:
        return ("t1c",)
    channels = ["t1c"]
    if "t2w" in roles:
        channels.append("t2w")
    if config.use_subtraction and "pre" in roles:
        channels.append("subtraction")
    if len(channels) == 1:
        raise UsageError(
            f"The {config.architecture} network fuses sequences, but the dataset has only T1C; add a T2W (or PRE "
            "with use_subtraction) channel or train the 'unet' architecture."
        )
    return tuple(channels)


class _SliceStep:
    """Dice + alpha * CE (Eq. 1) on a batch of slices, with assistant-sequence dropout."""

    def __init__(self, slices: SliceSet, config: BreastTrainingConfig, device: str, fused: bool) -> None:
        import torch

        from SlicerMedFuse.nets.losses import DiceCrossEntropyLoss

        self.slices, self.config, self.fused = slices, config, fused
        self.device = torch.device(device)
        self.loss = DiceCrossEntropyLoss(alpha=1.0, epsilon=1.0)
        foreground = slices.foreground
        self.positive = np.flatnonzero(foreground)
        self.negative = np.flatnonzero(~foreground)

    def _indices(self, rng: np.random.Generator) -> np.ndarray:
        use_positive = rng.random(self.config.batch_size) < self.config.foreground_probability
        pools = [
            self.positive if (p and self.positive.size) or not self.negative.size else self.negative
            for p in use_positive
        ]
        return np.array([pool[rng.integers(pool.size)] for pool in pools])

    def __call__(self, model: Any, iteration: int, rng: np.random.Generator) -> tuple[Any, dict[str, float]]:
        import torch

        index = self._indices(rng)
        x = torch.from_numpy(self.slices.images[index]).to(self.device)
        y = torch.from_numpy(self.slices.labels[index]).to(self.device)
        if not self.fused:
            return self.loss(model(x), y), {}
        presence = self.slices.presence[index].copy()
        presence[:, 1:] &= rng.random((len(index), presence.shape[1] - 1)) >= self.config.modality_dropout
        mask = torch.from_numpy(presence).to(self.device)
        x = x * mask[:, :, None, None].to(x.dtype)
        return self.loss(model(x, mask), y), {"assistant_present": float(presence[:, 1:].mean())}


def bundle_manifest(
    preprocessing: BreastPreprocessing,
    architecture: tuple[str, dict[str, Any]],
    config: BreastTrainingConfig,
    data_text: str,
    simulated: bool,
    notes: str,
    script: str,
) -> dict[str, Any]:
    intended = config.intended_use or (
        f"Demonstration and software testing only: {PHANTOM_DATA_NOTE}."
        if simulated
        else "Research use: breast mass segmentation on breast MRI (T1C with optional T2W); not a medical device."
    )
    modality = {"t1c": "MR", "t2w": "MR", "subtraction": "MR"}
    return {
        "id": config.model_id,
        "version": config.version,
        "task": "breast-mass",
        "title": config.title + (f" — {PHANTOM_DATA_NOTE}" if simulated else ""),
        "description": f"{TITLES[config.architecture]} of Li et al. (MICCAI 2019), slice-wise 2D, channels "
        + ", ".join(preprocessing.channels)
        + (f"; widths 1/{config.width_divisor} of the paper's" if config.width_divisor > 1 else "")
        + ".",
        "inputs": [
            {"role": role, "modality": modality[c]}
            for role, c in zip(preprocessing.roles, preprocessing.channels, strict=True)
        ],
        "labels": [{"value": lab.value, "name": lab.name, "color": list(lab.color)} for lab in MASS_LABELS],
        "preprocessing": preprocessing.to_dict(),
        "architecture": {"name": architecture[0], "args": architecture[1]},
        "license": config.license,
        "intended_use": intended,
        "training": {"data": data_text, "simulated": simulated, "script": script, "notes": notes},
        "references": [
            "Li et al., Learning Cross-Modal Deep Representations for Multi-Modal MR Image Segmentation, MICCAI 2019.",
        ],
    }


def train_breast_mass(
    data: str | Path,
    output: str | Path,
    config: BreastTrainingConfig | None = None,
    *,
    simulated: bool | None = None,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: Sequence[str] = (),
) -> Path | None:
    """Train a breast-mass network and write its bundle.

    Args:
        data: nnU-Net raw dataset folder with channel names T1C (+ T2W, PRE).
        output: Output folder (checkpoints, log, bundle).
        config: Run settings.
        simulated: Whether the data are simulated (None: dataset.json's ``simulated`` flag).
        dist: Process group (single process when None).
        progress: Progress reporting.
        resume: Continue from ``output/checkpoints/latest``.
        command: The command line, recorded in the bundle.

    Returns:
        The bundle folder on rank 0; None on other ranks.
    """
    import torch

    from SlicerMedFuse.nets.registry import build_network
    from SlicerMedFuse.training.trained_bundle import save_trained_bundle
    from SlicerMedFuse.training.trainer import train

    config = config or BreastTrainingConfig()
    dist = dist or DistributedContext()
    progress = progress or Progress()
    output = Path(output)
    started = time.perf_counter()
    dataset = read_nnunet_dataset(data)
    roles = channel_roles(dataset.channel_names)
    channels = model_channels(config, list(roles))
    preprocessing = BreastPreprocessing(channels=channels, in_plane_size=config.in_plane_size)
    slices = load_slices(dataset.training, roles, preprocessing, progress.span(0.0, 0.05))
    if not slices.foreground.any():
        raise UsageError(f"No training slice of {dataset.root} holds a mass; check the labels (mass = 1).")
    architecture = network_definition(config, channels)
    torch.manual_seed(config.trainer.seed)
    network = build_network(*architecture)
    network.to(dist.device)
    step = _SliceStep(slices, config, dist.device, fused=len(channels) > 1)
    run_state = {
        "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
        "preprocessing": preprocessing.to_dict(),
    }
    result = train(
        network,
        step,
        config.trainer,
        checkpoint_dir=output / "checkpoints",
        dist=dist,
        progress=progress.span(0.05, 0.98),
        resume=resume,
        run_state=run_state,
    )
    if not dist.is_main:
        return None
    is_simulated = dataset.simulated if simulated is None else simulated
    seconds = time.perf_counter() - started
    trainer = config.trainer
    data_text = (
        f"{dataset.name} ({dataset.root.name}): {len(dataset.training)} training studies, {len(slices.images)} slices "
        f"({int(slices.foreground.sum())} with a mass)" + (f"; {PHANTOM_DATA_NOTE}" if is_simulated else "")
    )
    notes = (
        f"{trainer.epochs} epochs x {trainer.iterations_per_epoch} iterations x batch {config.batch_size} on "
        f"{dist.world_size} process(es) ({dist.device}, {torch.get_num_threads()} thread(s)), {trainer.optimizer} "
        f"lr {trainer.learning_rate} (polynomial decay), modality dropout {config.modality_dropout}, seed {trainer.seed}; "
        f"slices {config.in_plane_size}x{config.in_plane_size}; final loss {result.history[-1]['loss']:.4f}; "
        f"{seconds / 60:.1f} min on {platform.machine()}."
    )
    manifest = bundle_manifest(
        preprocessing, architecture, config, data_text, is_simulated, notes, " ".join(command) or "train_breast_mass()"
    )
    return save_trained_bundle(network, manifest, output, history=result.history, seconds=seconds)

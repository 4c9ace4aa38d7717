"""Train TM-DCA on a Learn2Reg-style dataset and write it as a model bundle.

``medfuse train registration --data DIR --output DIR`` runs :func:`train_registration`:

1. read the dataset and its pairs (:mod:`.training_data`), load every volume onto the network grid;
2. build :class:`~SlicerMedFuse.nets.registration.TransMorphDCA` through the architecture
   allowlist, as a bundle will;
3. train unsupervised on random ordered pairs with the official OASIS recipe (NOTES A1 [code]):
   similarity (NCC, window 9, as VoxelMorph's ``NCC_vxm``; or MSE) + Dice of the warped one-hot
   labels when every image has labels + diffusion regulariser (or bending energy), weights 1:1:1;
   Adam(W) with weight decay 0, learning rate 1e-4 decaying as ``(1 - epoch / epochs)^0.9``, batch 1,
   500 epochs; the generic trainer (:mod:`SlicerMedFuse.training.trainer`) gives checkpoints,
   resume, DDP and progress;
4. score the validation pairs (Dice of the warped labels, similarity) before and after;
5. save the bundle (manifest: network grid, orientation, intensity normalisation, field convention).

Simplifications, stated: losses are computed on the network grid (the official code upsamples the
half-resolution field to full resolution first); AMSGrad (official) is not used; each iteration
draws one ordered pair at random (the official loop steps both directions of each pair).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.registration.training_data import RegistrationVolumes, load_volumes, read_registration_dataset
from SlicerMedFuse.training.distributed import DistributedContext
from SlicerMedFuse.training.trainer import TrainerConfig

__all__ = ["ARCHITECTURE_NAME", "RegistrationTrainingConfig", "train_registration"]

ARCHITECTURE_NAME = "medfuse.TransMorphDCA"


@dataclasses.dataclass(frozen=True)
class RegistrationTrainingConfig:
    """Everything that defines a TM-DCA training run.

    Attributes:
        input_shape: network grid ``(D, H, W)`` in SimpleITK array order; None: half of the first
            image's size rounded to multiples of 16 (official: half resolution, 80 x 96 x 112 for
            OASIS's 160 x 192 x 224).
        window_size: attention window ``(D, H, W)``; None: ``input_shape / 16`` per axis, the
            official rule (the last stage is one window: (5, 6, 7) for OASIS).
        embed_dim, depths, num_heads, offset_kernels, time_steps, drop_path_rate: the network
            (paper config: 96, (4, 4, 5), (8, 8, 8), (7, 5, 3), 12, 0.3).
        similarity: ``"ncc"`` (window ``ncc_window``) or ``"mse"``.
        ncc_window: NCC window edge in voxels (VoxelMorph's NCC: 9).
        regularizer: ``"diffusion"`` (official: l2 gradient) or ``"bending"``.
        weights: loss weights (similarity, Dice, regulariser); official OASIS 1, 1, 1.
        use_labels: add the Dice term when every image has labels.
        batch_size: pairs per step (official 1).
        trainer: loop settings (epochs, iterations, learning rate, seed, ...).
        model_id, version, title, license, intended_use: bundle fields.
    """

    input_shape: tuple[int, int, int] | None = None
    window_size: tuple[int, int, int] | None = None
    embed_dim: int = 96
    depths: tuple[int, ...] = (4, 4, 5)
    num_heads: tuple[int, ...] = (8, 8, 8)
    offset_kernels: tuple[int, ...] = (7, 5, 3)
    time_steps: int = 12
    drop_path_rate: float = 0.3
    similarity: Literal["ncc", "mse"] = "ncc"
    ncc_window: int = 9
    regularizer: Literal["diffusion", "bending"] = "diffusion"
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    use_labels: bool = True
    batch_size: int = 1
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(
            epochs=500, iterations_per_epoch=100, optimizer="adamw", learning_rate=1e-4, weight_decay=0.0, grad_clip=0.0
        )
    )
    model_id: str = "medfuse-registration-tmdca"
    version: str = "0.1.0"
    title: str = "TM-DCA deformable registration (deformable cross-attention Transformer)"
    license: str = "LicenseRef-see-training-data"
    intended_use: str = ""

    def __post_init__(self) -> None:
        if self.similarity not in ("ncc", "mse"):
            raise UsageError(f"The similarity must be ncc or mse; got {self.similarity!r}.")
        if self.regularizer not in ("diffusion", "bending"):
            raise UsageError(f"The regulariser must be diffusion or bending; got {self.regularizer!r}.")
        if self.input_shape is not None and (len(self.input_shape) != 3 or any(n % 16 for n in self.input_shape)):
            raise UsageError(f"The network grid must be three multiples of 16 (D,H,W); got {self.input_shape}.")
        if self.window_size is not None and (len(self.window_size) != 3 or min(self.window_size) < 1):
            raise UsageError(f"The window needs three positive sizes (D,H,W); got {self.window_size}.")
        if self.batch_size < 1:
            raise UsageError("The batch size must be at least 1.")
        if len(self.weights) != 3 or min(self.weights) < 0:
            raise UsageError(
                f"Give three non-negative loss weights (similarity, Dice, regulariser); got {self.weights}."
            )


def default_input_shape(image_size_zyx: Sequence[int]) -> tuple[int, int, int]:
    """Half the image size, rounded to the nearest multiple of 16 (at least 16) per axis."""
    return tuple(max(16, int(round(n / 2 / 16)) * 16) for n in image_size_zyx)  # type: ignore[return-value]


def network_arguments(config: RegistrationTrainingConfig, input_shape: Sequence[int]) -> dict[str, Any]:
    """JSON-ready constructor arguments of :class:`~SlicerMedFuse.nets.registration.TransMorphDCA`."""
    window = config.window_size or tuple(max(1, n // 16) for n in input_shape)
    return {
        "patch_size": 4,
        "embed_dim": config.embed_dim,
        "depths": list(config.depths),
        "num_heads": list(config.num_heads),
        "window_size": list(window),
        "offset_kernels": list(config.offset_kernels),
        "drop_path_rate": config.drop_path_rate,
        "time_steps": config.time_steps,
    }


class PairLoss:
    """Similarity + Dice + regulariser of a predicted field (MONAI losses), the official weighting.

    Args:
        config: the run settings.
        classes: label classes including background (0: no Dice term).
    """

    def __init__(self, config: RegistrationTrainingConfig, classes: int) -> None:
        from monai.losses import BendingEnergyLoss, DiceLoss, DiffusionLoss, LocalNormalizedCrossCorrelationLoss

        self.weights = config.weights
        self.classes = classes
        self.similarity = (
            LocalNormalizedCrossCorrelationLoss(spatial_dims=3, kernel_size=config.ncc_window)
            if config.similarity == "ncc"
            else None
        )
        self.regularizer = DiffusionLoss() if config.regularizer == "diffusion" else BendingEnergyLoss()
        self.dice = DiceLoss(include_background=False, smooth_nr=1e-5, smooth_dr=1e-5)

    def __call__(self, fixed: Any, moving: Any, field: Any, fixed_labels: Any = None, moving_labels: Any = None):
        """``(loss, logged terms)`` for ``(B, 1, D, H, W)`` images, ``(B, 3, D, H, W)`` field and optional labels."""
        import torch.nn.functional as F

        from SlicerMedFuse.nets.warping import warp

        warped = warp(moving, field)
        similarity = self.similarity(warped, fixed) if self.similarity is not None else F.mse_loss(warped, fixed)
        regularizer = self.regularizer(field)
        loss = self.weights[0] * similarity + self.weights[2] * regularizer
        terms = {"similarity": float(similarity.detach()), "regularizer": float(regularizer.detach())}
        if self.classes > 1 and fixed_labels is not None and moving_labels is not None:
            moving_onehot = F.one_hot(moving_labels[:, 0], self.classes).permute(0, 4, 1, 2, 3).float()
            fixed_onehot = F.one_hot(fixed_labels[:, 0], self.classes).permute(0, 4, 1, 2, 3).float()
            dice = self.dice(warp(moving_onehot, field), fixed_onehot)
            loss = loss + self.weights[1] * dice
            terms["dice_loss"] = float(dice.detach())
        return loss, terms


class _PairStep:
    """Draw ``batch_size`` random ordered pairs, predict, return the loss."""

    def __init__(
        self, volumes: RegistrationVolumes, pairs: Sequence[tuple[int, int]], loss: PairLoss, batch: int, device: str
    ):
        import torch

        self.images = torch.from_numpy(volumes.images)
        self.labels = torch.from_numpy(volumes.labels) if volumes.labels is not None else None
        self.pairs, self.loss, self.batch, self.device = list(pairs), loss, batch, torch.device(device)

    def __call__(self, model: Any, iteration: int, rng: np.random.Generator) -> tuple[Any, dict[str, float]]:
        chosen = [self.pairs[i] for i in rng.integers(len(self.pairs), size=self.batch)]
        fixed_index, moving_index = [p[0] for p in chosen], [p[1] for p in chosen]
        fixed, moving = self.images[fixed_index].to(self.device), self.images[moving_index].to(self.device)
        field = model(fixed, moving)
        labels = (None, None)
        if self.labels is not None:
            labels = (self.labels[fixed_index].to(self.device), self.labels[moving_index].to(self.device))
        return self.loss(fixed, moving, field, *labels)


def _dice(fixed: np.ndarray, warped: np.ndarray, classes: int) -> float:
    scores = []
    for k in range(1, classes):
        a, b = fixed == k, warped == k
        if a.any() or b.any():
            scores.append(2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))
    return float(np.mean(scores)) if scores else float("nan")


def evaluate_pairs(
    model: Any, volumes: RegistrationVolumes, pairs: Sequence[tuple[int, int]], device: str
) -> dict[str, Any]:
    """Mean Dice of the warped labels (when there are labels) and MSE, before and after, over ``pairs``."""
    import torch

    from SlicerMedFuse.nets.warping import warp, warp_labels

    classes = len(volumes.label_values) + 1
    records: dict[str, list[float]] = {"mse_before": [], "mse_after": [], "dice_before": [], "dice_after": []}
    model.eval()
    with torch.no_grad():
        for f, m in pairs:
            fixed = torch.from_numpy(volumes.images[f : f + 1]).to(device)
            moving = torch.from_numpy(volumes.images[m : m + 1]).to(device)
            field = model(fixed, moving)
            records["mse_before"].append(float(((moving - fixed) ** 2).mean()))
            records["mse_after"].append(float(((warp(moving, field) - fixed) ** 2).mean()))
            if volumes.labels is not None:
                moved = warp_labels(torch.from_numpy(volumes.labels[m : m + 1]).to(device), field)
                records["dice_before"].append(_dice(volumes.labels[f, 0], volumes.labels[m, 0], classes))
                records["dice_after"].append(_dice(volumes.labels[f, 0], moved[0, 0].cpu().numpy(), classes))
    return {key: round(float(np.mean(v)), 5) for key, v in records.items() if v} | {"pairs": len(pairs)}


def _manifest(
    config: RegistrationTrainingConfig,
    arguments: dict[str, Any],
    input_shape: Sequence[int],
    volumes: RegistrationVolumes,
    modality: str,
    data_text: str,
    simulated: bool,
    notes: str,
    script: str,
) -> dict[str, Any]:
    intended = config.intended_use or (
        "Demonstration and software testing only: trained on simulated data."
        if simulated
        else "Research use: initial deformation for instance-optimised registration of images like the training "
        "data (same modality and orientation, affinely pre-aligned); not a medical device."
    )
    return {
        "id": config.model_id,
        "version": config.version,
        "task": "registration",
        "title": config.title + (" (trained on simulated data)" if simulated else ""),
        "description": (
            "TM-DCA (Chen et al., MLMI 2023): dual Swin encoders joined by deformable window cross-attention, "
            "TransMorph ConvNet decoder with a time-varying velocity head; predicts a dense displacement."
        ),
        "inputs": [{"role": "fixed", "modality": modality}, {"role": "moving", "modality": modality}],
        "labels": [],
        "preprocessing": {
            "input_shape_zyx": [int(n) for n in input_shape],
            "orientation": volumes.orientation,
            "intensity": {"percentiles": [0.5, 99.5], "range": [0.0, 1.0]},
            "displacement": "voxels of the network grid; channels along index axes (i, j, k); fixed point -> moving point",
            "alignment": "inputs affinely pre-aligned; at inference the registration pipeline's linear stage aligns them",
        },
        "architecture": {"name": ARCHITECTURE_NAME, "args": arguments},
        "license": config.license,
        "intended_use": intended,
        "training": {"data": data_text, "simulated": simulated, "script": script, "notes": notes},
        "references": [
            "Chen, Liu, He, Du, Deformable Cross-Attention Transformer for Medical Image Registration, MLMI 2023.",
            "Chen, Frey, Du, Unsupervised Learning of Diffeomorphic Image Registration via TransMorph, WBIR 2022.",
        ],
    }


def train_registration(
    data: str | Path,
    output: str | Path,
    config: RegistrationTrainingConfig | None = None,
    *,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: Sequence[str] = (),
) -> Path | None:
    """Train TM-DCA and write its bundle.

    Args:
        data: Learn2Reg-style dataset folder.
        output: output folder (``checkpoints/latest/``, ``training_log.json``, the bundle folder).
        config: run settings (default: the official OASIS recipe).
        dist: process group (single process when None).
        progress: progress reporting.
        resume: continue from ``output/checkpoints/latest``.
        command: the command line, recorded in the bundle.

    Returns:
        The bundle folder on rank 0; None on other ranks.
    """
    import SimpleITK as sitk
    import torch

    from SlicerMedFuse.nets.registry import build_network
    from SlicerMedFuse.training.trained_bundle import save_trained_bundle
    from SlicerMedFuse.training.trainer import train

    config = config or RegistrationTrainingConfig()
    dist = dist or DistributedContext()
    progress = progress or Progress()
    output = Path(output)
    started = time.perf_counter()
    dataset = read_registration_dataset(data)
    with_labels = config.use_labels and config.weights[1] > 0 and dataset.labelled
    if config.use_labels and dataset.labels and not dataset.labelled:
        progress.log("some images have no label map: training without the Dice term")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(dataset.images[0]))
    reader.ReadImageInformation()
    input_shape = config.input_shape or default_input_shape(reader.GetSize()[::-1])
    progress.update(0.0, "loading", f"{len(dataset.images)} images onto a {'x'.join(map(str, input_shape))} grid")
    volumes = load_volumes(dataset, input_shape, with_labels=with_labels)
    arguments = network_arguments(config, input_shape)
    torch.manual_seed(config.trainer.seed)
    model = build_network(ARCHITECTURE_NAME, arguments).to(dist.device)
    loss = PairLoss(config, len(volumes.label_values) + 1 if with_labels else 0)
    step = _PairStep(volumes, dataset.pairs, loss, config.batch_size, dist.device)
    run_state = {"config": _jsonable(dataclasses.asdict(config)), "input_shape": list(input_shape)}
    result = train(
        model,
        step,
        config.trainer,
        checkpoint_dir=output / "checkpoints",
        dist=dist,
        progress=progress.span(0.02, 0.97),
        resume=resume,
        run_state=run_state,
    )
    if not dist.is_main:
        return None
    validation = (
        evaluate_pairs(model, volumes, dataset.validation_pairs, dist.device) if dataset.validation_pairs else {}
    )
    seconds = time.perf_counter() - started
    trainer = config.trainer
    kind = "given pairs" if dataset.paired else "all-to-all pairs"
    data_text = (
        f"{dataset.name} ({dataset.root.name}): {len(dataset.images)} images, {len(dataset.pairs)} training {kind}"
        + (f", {len(dataset.validation_pairs)} validation pairs" if dataset.validation_pairs else "")
        + (", with label maps (Dice term)" if with_labels else "")
        + ("; simulated data" if dataset.simulated else "")
    )
    notes = (
        f"{trainer.epochs} epochs x {trainer.iterations_per_epoch} iterations x batch {config.batch_size} on "
        f"{dist.world_size} process(es) ({dist.device}), {trainer.optimizer} lr {trainer.learning_rate}, seed {trainer.seed}; "
        f"loss {config.similarity}+{'dice+' if with_labels else ''}{config.regularizer} weights {list(config.weights)}; "
        f"final loss {result.history[-1]['loss']:.4f}"
        + (f"; validation {json.dumps(validation)}" if validation else "")
        + f"; {seconds / 60:.1f} min on {platform.machine()}."
    )
    manifest = _manifest(
        config,
        arguments,
        input_shape,
        volumes,
        dataset.modality,
        data_text,
        dataset.simulated,
        notes,
        " ".join(command) or "train_registration()",
    )
    return save_trained_bundle(
        model,
        manifest,
        output,
        history=result.history,
        seconds=seconds,
        images=[str(p) for p in dataset.images],
        pairs=len(dataset.pairs),
        validation=validation,
        resumed_from=result.resumed_from,
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))

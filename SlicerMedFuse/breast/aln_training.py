"""Train the Transfer Module classifier for ALN metastasis on an ALN dataset and write its bundle.

``medfuse train aln-metastasis --data DIR --output DIR`` runs :func:`train_aln`:

1. read ``DIR/cases.csv`` (:mod:`SlicerMedFuse.breast.aln_dataset`) and cut every training case's
   lesion-centred cubes exactly as inference will (:mod:`SlicerMedFuse.breast.aln_input`), with a
   margin of ``shift_voxels`` for random shifts;
2. fit the clinical normalisation (z-score, training statistics) that the bundle stores;
3. build :class:`~SlicerMedFuse.nets.classifier.TransferModuleClassifier` (one path per sequence,
   Transfer Modules after the paper code's blocks, or none with ``transfer_module=False``; the
   clinical branch Linear(10, 4) + BN + ReLU, or none with ``clinical=False``);
4. minimise binary cross-entropy on batches with random shifts, flips and axis permutations; the optional sequences
   are dropped (zeroed) with probability ``sequence_dropout`` so a missing T2W is handled;
   generic loop (AdamW, polynomial decay, checkpoints, resume) of :mod:`SlicerMedFuse.training.trainer`;
5. save the bundle; then score the held-out split (:func:`evaluate_aln_bundle`).

The paper's code trains with lr 1e-6, weight decay 1e-4, batch 32, 500 epochs from pre-trained
single-sequence paths. That schedule is far beyond a CPU demo; here the default is AdamW at lr 1e-3
with the paper's weight decay and batch size, from scratch, for a few hundred iterations.
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

from SlicerMedFuse.breast.aln_clinical import ClinicalNormalization, clinical_array
from SlicerMedFuse.breast.aln_dataset import AlnCaseFiles, read_aln_dataset
from SlicerMedFuse.breast.aln_input import SEQUENCES, AlnPreprocessing, crop_sequences, lesion_crop
from SlicerMedFuse.breast.aln_simulator import ALN_SIMULATION_NOTE
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.io import read_image
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.distributed import DistributedContext
from SlicerMedFuse.training.trainer import TrainerConfig

__all__ = ["AlnTrainingConfig", "AlnTrainingSet", "aln_bundle_manifest", "load_training_set", "train_aln"]

ARCHITECTURE = "medfuse.TransferModuleClassifier"
REFERENCE = (
    "Gravina, Santucci, Cordelli, Soda, Sansone, Cross-Modality Calibration in Multi-Input Network for Axillary "
    "Lymph Node Metastasis Evaluation (code: Michela94CE/Cross-Modality-Calibration-with-Transfer-Module)."
)


@dataclasses.dataclass(frozen=True)
class AlnTrainingConfig:
    """Everything that defines an ALN training run.

    Attributes:
        backbone: ``basicnet``, ``resnet10``, ``resnet18`` or ``resnet34``.
        base_features: BasicNet width ``f`` (paper code: 8; the demo uses 4 to stay small).
        resnet_widths: ResNet stage widths.
        transfer_module: Transfer Modules between the paths (False: ``tm_after=()``).
        clinical: Use the clinical branch (False: image-only network).
        sequences: Sequence roles, one path each (``dce`` first).
        crop_voxels: Cube side the network sees.
        spacing_mm: Cube voxel size.
        shift_voxels: Random shift of the cube in training (voxels, each axis).
        sequence_dropout: Probability of zeroing each optional sequence per sample.
        batch_size: Cases per step (paper: 32).
        threshold: Probability called positive (stored in the bundle).
        trainer: Loop settings.
        model_id, version, title, license, intended_use: Bundle identity.
    """

    backbone: str = "basicnet"
    base_features: int = 4
    resnet_widths: tuple[int, int, int, int] = (16, 32, 64, 128)
    transfer_module: bool = True
    clinical: bool = True
    sequences: tuple[str, ...] = ("dce", "t2w")
    crop_voxels: int = 32
    spacing_mm: float = 2.0
    shift_voxels: int = 2
    sequence_dropout: float = 0.25
    batch_size: int = 32
    threshold: float = 0.5
    trainer: TrainerConfig = dataclasses.field(
        default_factory=lambda: TrainerConfig(
            epochs=20, iterations_per_epoch=20, optimizer="adamw", learning_rate=1e-3, weight_decay=1e-4
        )
    )
    model_id: str = "medfuse-aln-metastasis"
    version: str = "0.1.0"
    title: str = "ALN metastasis probability (Transfer Module classifier, DCE + T2W + clinical)"
    license: str = "LicenseRef-see-training-data"
    intended_use: str = ""

    def __post_init__(self) -> None:
        from SlicerMedFuse.nets.classifier.transfer_classifier import BACKBONES

        if self.backbone not in BACKBONES:
            raise UsageError(f"The backbone must be one of {', '.join(BACKBONES)}; got {self.backbone!r}.")
        if list(self.sequences) != [s for s in SEQUENCES if s in self.sequences] or self.sequences[:1] != ("dce",):
            raise UsageError(f"The sequences must be 'dce' then optionally 't2w'; got {list(self.sequences)}.")
        if self.batch_size < 2:
            raise UsageError("The batch size must be at least 2 (the networks use batch normalisation).")
        if not 0.0 <= self.sequence_dropout < 1.0 or self.shift_voxels < 0 or self.base_features < 1:
            raise UsageError("sequence_dropout must be in [0, 1), shift_voxels >= 0 and base_features >= 1.")

    def network_args(self) -> dict[str, Any]:
        """JSON-ready constructor arguments of the allowlisted :data:`ARCHITECTURE`."""
        args: dict[str, Any] = {
            "spatial_dims": 3,
            "in_channels": [1] * len(self.sequences),
            "backbone": self.backbone,
            "clinical_features": 10 if self.clinical else 0,
        }
        if self.backbone == "basicnet":
            args["base_features"] = self.base_features
        else:
            args["resnet_widths"] = list(self.resnet_widths)
        if not self.transfer_module:
            args["tm_after"] = []
        return args


@dataclasses.dataclass
class AlnTrainingSet:
    """Training cases in memory: cubes ``(N, C, n, n, n)`` with margin, presence ``(N, C)``, raw clinical ``(N, 10)``, labels ``(N,)``."""

    cubes: np.ndarray
    present: np.ndarray
    clinical: np.ndarray
    labels: np.ndarray


def load_training_set(
    cases: Sequence[AlnCaseFiles], preprocessing: AlnPreprocessing, margin: int = 0, progress: Progress | None = None
) -> AlnTrainingSet:
    """Read and crop ``cases`` as inference does (plus ``margin`` voxels per side)."""
    progress = progress or Progress()
    cubes, present = [], []
    for index, case in enumerate(cases):
        progress.update(index / max(len(cases), 1), "reading cases", case.case_id)
        images = {role: read_image(path) for role, path in case.images.items() if role in preprocessing.sequences}
        mass = read_image(case.mass) if case.mass is not None else None
        cube, available = crop_sequences(images, lesion_crop(images["dce"], mass), preprocessing, margin)
        cubes.append(cube)
        present.append(available)
    return AlnTrainingSet(
        np.stack(cubes),
        np.stack(present),
        clinical_array([case.clinical for case in cases]),
        np.array([case.positive for case in cases], dtype=np.float32),
    )


class _AlnStep:
    """Binary cross-entropy on a batch of shifted cubes under random symmetries, with optional-sequence dropout.

    The symmetries are the cube's 48 (axis flips and permutations): the lesion features the label
    depends on (size, margins, enhancement pattern, surrounding signal) do not change under them.
    """

    def __init__(self, data: AlnTrainingSet, config: AlnTrainingConfig, clinical: np.ndarray, device: str) -> None:
        import torch

        self.data, self.config, self.device = data, config, torch.device(device)
        self.clinical = clinical  # normalised (N, 10) or (N, 0)
        self.loss = torch.nn.BCEWithLogitsLoss()

    def _batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        config, data = self.config, self.data
        index = rng.integers(len(data.labels), size=config.batch_size)
        n, shift = config.crop_voxels, 2 * config.shift_voxels
        offsets = rng.integers(shift + 1, size=(config.batch_size, 3))
        flips = rng.random((config.batch_size, 3)) < 0.5
        orders = np.argsort(rng.random((config.batch_size, 3)), axis=1)  # a random axis order per case
        batch = np.empty((config.batch_size, data.cubes.shape[1], n, n, n), dtype=np.float32)
        for k, (i, (z, y, x), flip, order) in enumerate(zip(index, offsets, flips, orders, strict=True)):
            cube = data.cubes[i, :, z : z + n, y : y + n, x : x + n]
            axes = tuple(1 + a for a in range(3) if flip[a])
            cube = np.flip(cube, axes) if axes else cube
            batch[k] = cube.transpose(0, *(1 + order))
        keep = data.present[index].copy()
        keep[:, 1:] &= rng.random((config.batch_size, keep.shape[1] - 1)) >= config.sequence_dropout
        batch *= keep[:, :, None, None, None]
        return batch, index

    def __call__(self, model: Any, iteration: int, rng: np.random.Generator) -> tuple[Any, dict[str, float]]:
        import torch

        batch, index = self._batch(rng)
        images = torch.from_numpy(batch).to(self.device)
        clinical = torch.from_numpy(self.clinical[index]).to(self.device) if self.clinical.shape[1] else None
        target = torch.from_numpy(self.data.labels[index]).to(self.device)
        logits = model(images, clinical)[:, 0]
        return self.loss(logits, target), {"positive_share": float(target.mean())}


def aln_bundle_manifest(
    preprocessing: AlnPreprocessing,
    config: AlnTrainingConfig,
    data_text: str,
    simulated: bool,
    notes: str,
    script: str,
) -> dict[str, Any]:
    """The manifest of an ALN bundle (task ``aln-metastasis``, no labels: it classifies)."""
    intended = config.intended_use or (
        f"Research demonstration only: {ALN_SIMULATION_NOTE}."
        if simulated
        else "Research use only: probability of axillary lymph node metastasis from breast MRI and clinical data; "
        "not a medical device."
    )
    paths = " + ".join(s.upper() for s in preprocessing.sequences)
    return {
        "id": config.model_id,
        "version": config.version,
        "task": "aln-metastasis",
        "title": config.title + (f" — {ALN_SIMULATION_NOTE}" if simulated else ""),
        "description": f"Transfer Module classifier ({config.backbone}, paths {paths}"
        + (", Transfer Modules between the paths" if config.transfer_module else ", no Transfer Module")
        + (", clinical branch of 10 features" if config.clinical else ", no clinical branch")
        + f"); input {preprocessing.crop_voxels}^3 voxels of {preprocessing.spacing_mm:g} mm around the lesion.",
        "inputs": [{"role": role, "modality": "MR"} for role in preprocessing.sequences],
        "labels": [],
        "preprocessing": preprocessing.to_dict(),
        "architecture": {"name": ARCHITECTURE, "args": config.network_args()},
        "license": config.license,
        "intended_use": intended,
        "training": {"data": data_text, "simulated": simulated, "script": script, "notes": notes},
        "references": [REFERENCE],
    }


def train_aln(
    data: str | Path,
    output: str | Path,
    config: AlnTrainingConfig | None = None,
    *,
    simulated: bool | None = None,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: Sequence[str] = (),
) -> Path | None:
    """Train an ALN-metastasis classifier and write its bundle.

    Args:
        data: ALN dataset folder (``cases.csv``; see :mod:`SlicerMedFuse.breast.aln_dataset`).
        output: Output folder (checkpoints, log, bundle).
        config: Run settings.
        simulated: Whether the data are simulated (None: dataset.json's ``simulated``).
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

    config = config or AlnTrainingConfig()
    dist = dist or DistributedContext()
    progress = progress or Progress()
    output = Path(output)
    started = time.perf_counter()
    dataset = read_aln_dataset(data)
    labels = [case.positive for case in dataset.training]
    if all(labels) or not any(labels):
        raise UsageError(
            f"The training cases of {dataset.root} are all {'positive' if labels[0] else 'negative'}; "
            "a classifier needs both."
        )
    shape = AlnPreprocessing(config.sequences, config.crop_voxels, config.spacing_mm, threshold=config.threshold)
    cases = load_training_set(dataset.training, shape, config.shift_voxels, progress.span(0.0, 0.1))
    normalization = ClinicalNormalization.fit(cases.clinical) if config.clinical else ClinicalNormalization.none()
    preprocessing = dataclasses.replace(shape, clinical=normalization)
    torch.manual_seed(config.trainer.seed)
    network = build_network(ARCHITECTURE, config.network_args())
    network.to(dist.device)
    step = _AlnStep(cases, config, normalization.apply(cases.clinical), dist.device)
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
        progress=progress.span(0.1, 0.98),
        resume=resume,
        run_state=run_state,
    )
    if not dist.is_main:
        return None
    is_simulated = dataset.simulated if simulated is None else simulated
    seconds = time.perf_counter() - started
    trainer = config.trainer
    positives = int(cases.labels.sum())
    data_text = (
        f"{dataset.name} ({dataset.root.name}): {len(dataset.training)} training cases ({positives} ALN-positive)"
        + (f"; {ALN_SIMULATION_NOTE}" if is_simulated else "")
    )
    notes = (
        f"{trainer.epochs} epochs x {trainer.iterations_per_epoch} iterations x batch {config.batch_size} "
        f"({dist.device}, {torch.get_num_threads()} thread(s)), {trainer.optimizer} lr {trainer.learning_rate} "
        f"(polynomial decay), weight decay {trainer.weight_decay}, sequence dropout {config.sequence_dropout}, "
        f"shifts +-{config.shift_voxels} voxels, flips and axis permutations, seed {trainer.seed}; final loss "
        f"{result.history[-1]['loss']:.4f}; {seconds / 60:.1f} min on {platform.machine()}."
    )
    manifest = aln_bundle_manifest(
        preprocessing, config, data_text, is_simulated, notes, " ".join(command) or "train_aln()"
    )
    return save_trained_bundle(network, manifest, output, history=result.history, seconds=seconds)

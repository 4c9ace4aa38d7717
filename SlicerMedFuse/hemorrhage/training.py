"""Train a hemorrhage model on a BHSD-layout dataset and write it as a model bundle.

``medfuse train hemorrhage --data DIR --output DIR`` runs :func:`train_hemorrhage`:

1. read the nnU-Net raw dataset (:func:`~SlicerMedFuse.training.nnunet_dataset.read_nnunet_dataset`),
   pick bleed and no-bleed cases (BHSD Table 2's mix by default, :func:`select_cases`);
2. preprocess every case once with the task's own :func:`prepare_ct` (spacing: nnU-Net's median
   spacing unless given);
3. build the network (single-window :class:`~SlicerMedFuse.nets.hemorrhage.HemorrhageUNet`, or the
   multi-window Transfer-Module variant) through the architecture allowlist, as a bundle will;
4. train with Dice + CE and deep supervision on random patches (foreground oversampling, mirroring
   and intensity augmentation), optionally with Cross Pseudo Supervision on an unlabelled folder
   (BHSD Table 4); a checkpoint per epoch, resumable, DDP under torchrun;
5. save the bundle (manifest: preprocessing, architecture, training data, ``simulated``).

Outputs under ``output``: ``checkpoints/latest/``, ``preprocessed/``, ``training_log.json`` and the
bundle folder ``<model_id>-<version>/``.
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
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS
from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing
from SlicerMedFuse.hemorrhage.preprocessing import resolve_windows
from SlicerMedFuse.hemorrhage.provenance import SIMULATED_DATA_NOTE
from SlicerMedFuse.hemorrhage.training_data import load_cases, median_spacing, select_cases
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.training.distributed import DistributedContext
from SlicerMedFuse.training.nnunet_dataset import DatasetCase, list_image_folder, read_nnunet_dataset
from SlicerMedFuse.training.trainer import TrainerConfig

__all__ = ["ARCHITECTURE_NAMES", "HemorrhageTrainingConfig", "network_definition", "train_hemorrhage"]

#: ``--architecture`` choice -> allowlisted architecture name.
ARCHITECTURE_NAMES = {"single": "medfuse.HemorrhageUNet", "multi-window": "medfuse.MultiWindowHemorrhageUNet"}


@dataclasses.dataclass(frozen=True)
class HemorrhageTrainingConfig:
    """Everything that defines a hemorrhage training run.

    Attributes:
        architecture: ``"single"`` (BHSD: one normalised CT channel) or ``"multi-window"`` (one
            path per window, Transfer Module fusion).
        windows: CT windows; the first must be ``brain`` (BHSD's normalisation). The single
            architecture stacks them as channels, the multi-window one gives each its own path.
        spacing_mm: Network voxel spacing ``(i, j, k)`` on the RAS grid (mm); None: median of the data.
        patch_size_zyx: Training patch (BHSD: ``(32, 128, 128)``).
        filters: U-Net channels per level (nnU-Net: 32, 64, 128, 256, 320, 320).
        max_levels: Most U-Net levels.
        deep_supr_num: Deep supervision heads below full resolution.
        stem_channels: Channels per window path (multi-window only).
        batch_size: Patches per step and process (nnU-Net: 2).
        foreground_probability: Share of patches centred on a bleed (nnU-Net: 0.33).
        class_balanced: Centre those patches on a class drawn uniformly over the dataset, then a
            case holding it (rare classes as often as common ones); False: nnU-Net's per-case draw.
        bleed_cases: Bleed cases used (None: all).
        no_bleed_cases: No-bleed cases used (None: BHSD's 200 per 96 bleed cases, capped by availability).
        cps_weight: Weight lambda of the Cross Pseudo Supervision loss (used with unlabelled data).
        unlabelled_batch_size: Unlabelled patches per step (CPS).
        trainer: The loop settings (epochs, iterations, optimizer, seed, ...).
        model_id: Bundle id.
        version: Bundle version.
        title: Bundle title.
        license: Licence of the weights (an SPDX id where one exists).
        intended_use: Intended use text for the bundle (default depends on ``simulated``).
        pretrained: Bundle folder whose weights start the training (nnU-Net's ``-pretrained_weights``;
            same architecture and preprocessing); None: random initialisation.
    """

    architecture: Literal["single", "multi-window"] = "single"
    windows: tuple[str, ...] = ("brain",)
    spacing_mm: tuple[float, float, float] | None = None
    patch_size_zyx: tuple[int, int, int] = (32, 128, 128)
    filters: tuple[int, ...] = (32, 64, 128, 256, 320, 320)
    max_levels: int = 6
    deep_supr_num: int = 2
    stem_channels: int = 8
    batch_size: int = 2
    foreground_probability: float = 0.33
    class_balanced: bool = False
    bleed_cases: int | None = None
    no_bleed_cases: int | None = None
    cps_weight: float = 1.0
    unlabelled_batch_size: int = 2
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    model_id: str = "medfuse-hemorrhage"
    version: str = "0.1.0"
    title: str = "Intracranial hemorrhage segmentation (BHSD 5 classes)"
    license: str = "LicenseRef-see-training-data"
    intended_use: str = ""
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURE_NAMES:
            raise UsageError(
                f"The architecture must be one of {', '.join(ARCHITECTURE_NAMES)}; got {self.architecture!r}."
            )
        windows = resolve_windows(self.windows)
        if windows[0].name != "brain":
            raise UsageError("The first CT window must be 'brain' (BHSD's normalisation).")
        if self.architecture == "multi-window" and len(windows) < 2:
            raise UsageError("The multi-window architecture needs at least two windows, e.g. brain,subdural,bone.")
        if self.batch_size < 1 or self.unlabelled_batch_size < 1:
            raise UsageError("Batch sizes must be at least 1.")
        if len(self.filters) < 3:
            raise UsageError("Give at least three filter counts (one per U-Net level).")


def network_definition(
    preprocessing: HemorrhagePreprocessing, config: HemorrhageTrainingConfig
) -> tuple[str, dict[str, Any]]:
    """The allowlisted architecture name and its JSON-ready constructor arguments."""
    from SlicerMedFuse.nets.hemorrhage.plan import plan_unet

    plan = plan_unet(preprocessing.patch_size_zyx, preprocessing.spacing_zyx, max_levels=config.max_levels)
    filters = list(config.filters) + [config.filters[-1]] * max(0, plan.levels - len(config.filters))
    args: dict[str, Any] = {
        "in_channels": preprocessing.channels,
        "out_channels": len(HEMORRHAGE_LABELS) + 1,
        "kernel_size": [list(k) for k in plan.kernel_size],
        "strides": [list(s) for s in plan.strides],
        "filters": filters[: plan.levels],
        "deep_supr_num": min(config.deep_supr_num, plan.levels - 2),
    }
    if config.architecture == "multi-window":
        args["stem_channels"] = config.stem_channels
    return ARCHITECTURE_NAMES[config.architecture], args


def _check_patch(preprocessing: HemorrhagePreprocessing, args: dict[str, Any]) -> None:
    divisor = np.prod(np.asarray(args["strides"]), axis=0)
    if np.any(np.asarray(preprocessing.patch_size_zyx) % divisor):
        raise UsageError(
            f"The patch {preprocessing.patch_size_zyx} must be a multiple of {tuple(int(d) for d in divisor)} per axis "
            "(the U-Net's total downsampling)."
        )


class _SupervisedStep:
    """Dice + CE with deep supervision on augmented patches; with ``unlabelled``, plus CPS."""

    def __init__(self, sampler: Any, unlabelled: Any, config: HemorrhageTrainingConfig, augmentation: Any, device: str):
        import torch
        from monai.losses import DeepSupervisionLoss, DiceCELoss

        self.sampler, self.unlabelled, self.config = sampler, unlabelled, config
        self.augmentation, self.device = augmentation, torch.device(device)
        # Batch Dice over the foreground classes only (nnU-Net's do_bg=False; background would add
        # a near-constant term that dilutes the rare classes' share), as nnU-Net's 3d_fullres; empty
        # no-bleed patches stay well defined.
        self.loss = DeepSupervisionLoss(
            DiceCELoss(
                to_onehot_y=True, softmax=True, batch=True, include_background=False, smooth_nr=1e-5, smooth_dr=1e-5
            )
        )

    def __call__(self, model: Any, iteration: int, rng: np.random.Generator) -> tuple[Any, dict[str, float]]:
        import torch

        from SlicerMedFuse.training.cross_pseudo_supervision import cross_pseudo_loss

        images, labels = self.augmentation(*self.sampler.sample(self.config.batch_size, rng), rng)
        n_labelled = images.shape[0]
        if self.unlabelled is not None:
            extra, _ = self.augmentation(*self.unlabelled.sample(self.config.unlabelled_batch_size, rng), rng)
            images = np.concatenate([images, extra])
        x = torch.from_numpy(images).to(self.device)
        y = torch.from_numpy(labels.astype(np.float32)).to(self.device)
        outputs = model(x, deep_supervision=True)
        if self.unlabelled is None:
            loss = self.loss([o[:n_labelled] for o in outputs], y)
            return loss, {}
        out_a, out_b = outputs
        supervised = self.loss([o[:n_labelled] for o in out_a], y) + self.loss([o[:n_labelled] for o in out_b], y)
        cps = cross_pseudo_loss(out_a[0], out_b[0])
        return supervised + self.config.cps_weight * cps, {
            "supervised": float(supervised.detach()),
            "cps": float(cps.detach()),
        }


def _manifest(
    preprocessing: HemorrhagePreprocessing,
    architecture: tuple[str, dict[str, Any]],
    config: HemorrhageTrainingConfig,
    data_text: str,
    simulated: bool,
    notes: str,
    script: str,
) -> dict[str, Any]:
    intended = config.intended_use or (
        f"Demonstration and software testing only: {SIMULATED_DATA_NOTE}."
        if simulated
        else "Research use: intracranial hemorrhage segmentation on non-contrast head CT; not a medical device."
    )
    return {
        "id": config.model_id,
        "version": config.version,
        "task": "hemorrhage",
        "title": config.title
        + (f", {' + '.join(config.windows)} windows fused" if config.architecture == "multi-window" else "")
        + (f" — {SIMULATED_DATA_NOTE}" if simulated else ""),
        "description": (
            "nnU-Net-like 3D U-Net (MONAI DynUNet) for BHSD's five hemorrhage classes"
            + (", multi-window input fused by the Transfer Module." if config.architecture == "multi-window" else ".")
        ),
        "inputs": [{"role": "ct", "modality": "CT"}],
        "labels": [{"value": lab.value, "name": lab.name, "color": list(lab.color)} for lab in HEMORRHAGE_LABELS],
        "preprocessing": preprocessing.to_dict(),
        "architecture": {"name": architecture[0], "args": architecture[1]},
        "license": config.license,
        "intended_use": intended,
        "training": {"data": data_text, "simulated": simulated, "script": script, "notes": notes},
        "references": [
            "Wu et al., BHSD: A 3D Multi-class Brain Hemorrhage Segmentation Dataset, MLMI 2023.",
            "Isensee et al., nnU-Net, Nat. Methods 2021.",
        ],
    }


def train_hemorrhage(
    data: str | Path,
    output: str | Path,
    config: HemorrhageTrainingConfig | None = None,
    *,
    unlabelled: str | Path | None = None,
    negatives: str | Path | None = None,
    simulated: bool | None = None,
    dist: DistributedContext | None = None,
    progress: Progress | None = None,
    resume: bool = False,
    command: Sequence[str] = (),
) -> Path | None:
    """Train a hemorrhage model and write its bundle.

    Args:
        data: nnU-Net raw dataset folder (BHSD as distributed, or the simulated one).
        output: Output folder (checkpoints, cache, log, bundle).
        config: Run settings (defaults: BHSD/nnU-Net recipe).
        unlabelled: Folder of unlabelled CTs for Cross Pseudo Supervision (None: supervised only).
        negatives: Folder of CTs without hemorrhage (no labels) for the no-bleed mix.
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
    from SlicerMedFuse.training.augmentation import Augmentation
    from SlicerMedFuse.training.cross_pseudo_supervision import CrossPseudoPair
    from SlicerMedFuse.training.patch_sampler import PatchSampler
    from SlicerMedFuse.training.trained_bundle import save_trained_bundle
    from SlicerMedFuse.training.trainer import train

    config = config or HemorrhageTrainingConfig()
    dist = dist or DistributedContext()
    progress = progress or Progress()
    output = Path(output)
    started = time.perf_counter()
    dataset = read_nnunet_dataset(data)
    if dataset.num_channels != 1:
        raise UsageError(
            f"The dataset has {dataset.num_channels} channels; the hemorrhage task trains on one CT channel."
        )
    extra = list_image_folder(Path(negatives), dataset.file_ending) if negatives else []
    selection = select_cases(
        dataset.training,
        extra,
        bleed_cases=config.bleed_cases,
        no_bleed_cases=config.no_bleed_cases,
        seed=config.trainer.seed,
    )
    spacing = config.spacing_mm or median_spacing(selection.cases)
    windows = resolve_windows(config.windows)
    preprocessing = HemorrhagePreprocessing(
        spacing_mm=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        windows=windows,
        patch_size_zyx=config.patch_size_zyx,
    )
    architecture = network_definition(preprocessing, config)
    _check_patch(preprocessing, architecture[1])
    cache = output / "preprocessed"
    prep_progress = progress.span(0.0, 0.1)
    cases = load_cases(selection.cases, preprocessing, cache, dist=dist, progress=prep_progress)
    unlabelled_cases: list[DatasetCase] = list_image_folder(Path(unlabelled), dataset.file_ending) if unlabelled else []
    unlabelled_arrays = (
        load_cases(unlabelled_cases, preprocessing, cache, labelled=False, dist=dist, progress=prep_progress)
        if unlabelled_cases
        else None
    )

    torch.manual_seed(config.trainer.seed)
    network = build_network(*architecture)
    if config.pretrained and not (resume and (output / "checkpoints" / "latest").is_dir()):
        _start_from_bundle(network, architecture, preprocessing, Path(config.pretrained))
    model: torch.nn.Module = network
    if unlabelled_arrays:
        torch.manual_seed(config.trainer.seed + 1)
        model = CrossPseudoPair(network, build_network(*architecture))
    model.to(dist.device)
    sampler = PatchSampler(
        cases, preprocessing.patch_size_zyx, config.foreground_probability, class_balanced=config.class_balanced
    )
    unlabelled_sampler = (
        PatchSampler(unlabelled_arrays, preprocessing.patch_size_zyx, 0.0) if unlabelled_arrays else None
    )
    step = _SupervisedStep(
        sampler, unlabelled_sampler, config, Augmentation(mirror_axes=preprocessing.mirror_axes), dist.device
    )
    run_state = {"config": _jsonable(dataclasses.asdict(config)), "preprocessing": preprocessing.to_dict()}
    result = train(
        model,
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
    data_text = (
        f"{dataset.name} ({dataset.root.name}): {len(selection.bleed)} bleed + {len(selection.no_bleed)} no-bleed "
        f"training scans"
        + (f", {len(unlabelled_cases)} unlabelled scans (Cross Pseudo Supervision)" if unlabelled_cases else "")
        + (f"; {SIMULATED_DATA_NOTE}" if is_simulated else "")
    )
    seconds = time.perf_counter() - started
    trainer = config.trainer
    started_from = f"started from the weights of {Path(config.pretrained).name}; " if config.pretrained else ""
    notes = started_from + (
        f"{trainer.epochs} epochs x {trainer.iterations_per_epoch} iterations x batch {config.batch_size} on "
        f"{dist.world_size} process(es) ({dist.device}), {trainer.optimizer} lr {trainer.learning_rate}, seed {trainer.seed}; "
        f"final loss {result.history[-1]['loss']:.4f}; {seconds / 60:.1f} min on {platform.machine()}."
    )
    manifest = _manifest(
        preprocessing, architecture, config, data_text, is_simulated, notes, " ".join(command) or "train_hemorrhage()"
    )
    acquisitions = training_acquisition_range(dataset.root)
    if acquisitions:
        manifest["training_acquisition"] = acquisitions
    return save_trained_bundle(
        network,
        manifest,
        output,
        history=result.history,
        seconds=seconds,
        cases={"bleed": [c.case_id for c in selection.bleed], "no_bleed": [c.case_id for c in selection.no_bleed]},
        unlabelled=[c.case_id for c in unlabelled_cases],
        resumed_from=result.resumed_from,
    )


def _start_from_bundle(
    network: Any, architecture: tuple[str, dict[str, Any]], preprocessing: HemorrhagePreprocessing, folder: Path
) -> None:
    """Copy a bundle's weights into ``network`` (the bundle must have this run's architecture and preprocessing)."""
    from SlicerMedFuse.models.bundle import load_bundle

    loaded = load_bundle(folder)
    manifest = loaded.manifest
    if (manifest.architecture, dict(manifest.architecture_args)) != (architecture[0], _jsonable(architecture[1])):
        raise UsageError(
            f"The bundle {folder.name} given to --pretrained has another network ({manifest.architecture}); "
            "train with the same --architecture, --patch, --filters and --spacing as that bundle."
        )
    if _jsonable(manifest.preprocessing) != _jsonable(preprocessing.to_dict()):
        raise UsageError(
            f"The bundle {folder.name} given to --pretrained was trained with other preprocessing (spacing, windows "
            "or patch); train with the same settings as that bundle."
        )
    network.load_state_dict(loaded.network.state_dict(), strict=True)


def training_acquisition_range(dataset_root: Path) -> dict[str, Any]:
    """The acquisitions a simulated dataset was scanned with, for the bundle's ``training_acquisition``.

    Read from ``dataset.json`` (``simulation.cases``: every training case's acquisition); {} for
    a dataset without simulated acquisitions (real data, or the source CT as it is).
    """
    try:
        dataset = json.loads((dataset_root / "dataset.json").read_text(encoding="utf-8"))
        cases = dataset["simulation"]["cases"]["train"]
        scans = [case["acquisition"] for case in cases if case.get("acquisition")]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not scans:
        return {}

    def span(key: str, magnitude: bool = False) -> list[float]:
        values = [abs(float(scan[key])) if magnitude else float(scan[key]) for scan in scans]
        return [round(min(values), 2), round(max(values), 2)]

    stated: dict[str, Any] = {
        "slice_thickness_mm": span("slice_thickness_mm"),
        "slice_spacing_mm": span("slice_spacing_mm"),
        "tilt_deg": span("tilt_deg", magnitude=True),
        "inplane_mm": span("inplane_mm"),
    }
    excluded = (dataset["simulation"].get("acquisitions") or {}).get("excluded")
    if excluded:  # each quantity alone is in its range, but never both: say so
        stated["untrained_corner"] = {"tilt_deg": float(excluded[0]), "slice_thickness_mm": float(excluded[1])}
    return stated


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))

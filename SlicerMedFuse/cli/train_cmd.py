"""``medfuse train TASK ...``: train a model on a dataset in its standard layout and write a bundle.

``medfuse train hemorrhage --data DIR --output DIR`` trains on BHSD as distributed (nnU-Net raw
layout). Multi-GPU / multi-node / multi-process CPU training::

    torchrun --nproc_per_node 4 -m SlicerMedFuse train hemorrhage --data DIR --output DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from SlicerMedFuse.cli import train_aln, train_breast, train_registration
from SlicerMedFuse.cli.train_options import add_run_options, floats, ints, run_training, simulated_flag
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("train", help="train a model on a dataset and write a model bundle")
    tasks = parser.add_subparsers(dest="train_task", metavar="TASK", required=True)
    _add_hemorrhage(tasks)
    train_registration.add_parser(tasks)
    train_breast.add_parser(tasks)
    train_aln.add_parser(tasks)


def _add_hemorrhage(tasks: argparse._SubParsersAction) -> None:
    p = tasks.add_parser(
        "hemorrhage",
        help="5-class intracranial hemorrhage (BHSD layout)",
        description="Train the hemorrhage model on an nnU-Net raw dataset (dataset.json, imagesTr, labelsTr), e.g. BHSD.",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset folder (nnU-Net raw layout)")
    p.add_argument("--output", required=True, type=Path, help="output folder (checkpoints, cache, log, bundle)")
    p.add_argument("--unlabelled", type=Path, help="folder of unlabelled CTs: enables Cross Pseudo Supervision")
    p.add_argument("--negatives", type=Path, help="folder of CTs without hemorrhage (no labels) for the no-bleed mix")
    p.add_argument("--bleed-cases", type=int, help="bleed cases used (default all)")
    p.add_argument(
        "--no-bleed-cases", type=int, help="no-bleed cases used (default 200 per 96 bleed cases, as BHSD's best)"
    )
    p.add_argument("--architecture", choices=("single", "multi-window"), default="single")
    p.add_argument(
        "--windows", default=None, help="CT windows, comma-separated (default brain; multi-window: brain,subdural,bone)"
    )
    p.add_argument(
        "--spacing", type=floats, help="network spacing X,Y,Z in mm on the RAS grid (default: median of the data)"
    )
    p.add_argument(
        "--patch", type=ints, default=(32, 128, 128), help="patch Z,Y,X in voxels (default 32,128,128 as BHSD)"
    )
    p.add_argument("--filters", type=ints, default=(32, 64, 128, 256, 320, 320), help="U-Net channels per level")
    p.add_argument("--stem-channels", type=int, default=8, help="channels per window path (multi-window)")
    p.add_argument("--deep-supervision", type=int, default=2, help="deep supervision heads (0 disables)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--foreground", type=float, default=0.33, help="share of patches centred on a bleed")
    p.add_argument(
        "--class-balanced",
        action="store_true",
        help="centre bleed patches on a class drawn uniformly over the dataset (default: per case, as nnU-Net)",
    )
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--iterations", type=int, default=250, help="iterations per epoch (nnU-Net: 250)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="sgd (nnU-Net) or adamw")
    p.add_argument("--lr", type=float, default=None, help="initial learning rate (default 1e-2 sgd, 1e-3 adamw)")
    p.add_argument("--cps-weight", type=float, default=1.0, help="Cross Pseudo Supervision loss weight")
    p.add_argument(
        "--pretrained",
        type=Path,
        help="bundle folder whose weights start the training (same network and preprocessing)",
    )
    add_run_options(p, model_id="medfuse-hemorrhage")
    p.set_defaults(handler=_handle_hemorrhage)


def _handle_hemorrhage(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.hemorrhage.training import HemorrhageTrainingConfig, train_hemorrhage
    from SlicerMedFuse.training.trainer import TrainerConfig

    if len(args.patch) != 3 or (args.spacing is not None and len(args.spacing) != 3):
        raise UsageError("--patch takes Z,Y,X and --spacing X,Y,Z (three values each).")
    windows = args.windows or ("brain,subdural,bone" if args.architecture == "multi-window" else "brain")
    trainer = TrainerConfig(
        epochs=args.epochs,
        iterations_per_epoch=args.iterations,
        optimizer=args.optimizer,
        learning_rate=args.lr if args.lr is not None else (1e-2 if args.optimizer == "sgd" else 1e-3),
        seed=args.seed,
        amp=True,
    )
    config = HemorrhageTrainingConfig(
        architecture=args.architecture,
        windows=tuple(w.strip() for w in windows.split(",") if w.strip()),
        spacing_mm=args.spacing,
        patch_size_zyx=args.patch,
        filters=args.filters,
        deep_supr_num=args.deep_supervision,
        stem_channels=args.stem_channels,
        batch_size=args.batch_size,
        foreground_probability=args.foreground,
        class_balanced=args.class_balanced,
        bleed_cases=args.bleed_cases,
        no_bleed_cases=args.no_bleed_cases,
        cps_weight=args.cps_weight,
        trainer=trainer,
        model_id=args.model_id,
        version=args.model_version,
        license=args.license,
        pretrained=str(args.pretrained) if args.pretrained else None,
    )
    run_training(
        args,
        train_hemorrhage,
        args.data,
        args.output,
        config,
        unlabelled=args.unlabelled,
        negatives=args.negatives,
        simulated=simulated_flag(args),
        progress=progress,
    )
    return 0

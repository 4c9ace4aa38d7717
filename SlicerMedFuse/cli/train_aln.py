"""``medfuse train aln-metastasis --data DIR --output DIR``: train the Transfer Module ALN classifier.

The dataset is a folder with ``cases.csv`` (image paths, the ten clinical fields, the ``aln``
label, a ``train``/``test`` split; see docs/aln-metastasis.md)::

    medfuse train aln-metastasis --data aln_data --output runs/aln --epochs 20 --iterations 20

After training, the held-out split is classified with the new bundle and scored (AUC, accuracy,
sensitivity, specificity; ``evaluation.json`` and a line on stdout); ``--no-evaluate`` skips it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from SlicerMedFuse.cli.train_options import add_run_options, run_training, simulated_flag
from SlicerMedFuse.progress import Progress

__all__ = ["add_parser"]


def add_parser(tasks: argparse._SubParsersAction) -> None:
    """Add ``aln-metastasis`` to the ``medfuse train`` task subparsers."""
    p = tasks.add_parser(
        "aln-metastasis",
        help="ALN metastasis classifier (DCE + T2W + 10 clinical features; cases.csv layout)",
        description="Train the Transfer Module multi-input classifier on a folder with cases.csv (see "
        "docs/aln-metastasis.md).",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset folder holding cases.csv")
    p.add_argument("--output", required=True, type=Path, help="output folder (checkpoints, log, bundle, evaluation)")
    p.add_argument("--backbone", choices=("basicnet", "resnet10", "resnet18", "resnet34"), default="basicnet")
    p.add_argument("--base-features", type=int, default=4, help="BasicNet width f (paper code: 8)")
    p.add_argument("--no-transfer-module", action="store_true", help="no Transfer Module between the paths")
    p.add_argument("--no-clinical", action="store_true", help="image-only network (no clinical branch)")
    p.add_argument("--no-t2w", action="store_true", help="one path, DCE only")
    p.add_argument("--crop", type=int, default=32, help="cube side in voxels (at least 32)")
    p.add_argument("--spacing", type=float, default=2.0, help="cube voxel size in mm")
    p.add_argument("--sequence-dropout", type=float, default=0.25, help="probability of zeroing the T2W per sample")
    p.add_argument("--batch-size", type=int, default=32, help="cases per step (paper: 32)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--iterations", type=int, default=20, help="iterations per epoch")
    p.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="weight decay (paper: 1e-4)")
    p.add_argument("--threshold", type=float, default=0.5, help="probability called positive (stored in the bundle)")
    p.add_argument("--no-evaluate", action="store_true", help="do not score the held-out split after training")
    add_run_options(p, model_id="medfuse-aln-metastasis")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.breast.aln_evaluation import evaluate_aln_bundle
    from SlicerMedFuse.breast.aln_training import AlnTrainingConfig, train_aln
    from SlicerMedFuse.specs import task_spec
    from SlicerMedFuse.training.trainer import TrainerConfig

    config = AlnTrainingConfig(
        backbone=args.backbone,
        base_features=args.base_features,
        transfer_module=not args.no_transfer_module,
        clinical=not args.no_clinical,
        sequences=("dce",) if args.no_t2w else ("dce", "t2w"),
        crop_voxels=args.crop,
        spacing_mm=args.spacing,
        sequence_dropout=args.sequence_dropout,
        batch_size=args.batch_size,
        threshold=args.threshold,
        trainer=TrainerConfig(
            epochs=args.epochs,
            iterations_per_epoch=args.iterations,
            optimizer="adamw",
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            seed=args.seed,
        ),
        model_id=args.model_id,
        version=args.model_version,
        license=args.license,
    )
    bundle, device = run_training(
        args,
        train_aln,
        args.data,
        args.output,
        config,
        simulated=simulated_flag(args),
        progress=progress,
    )
    if bundle is None:
        return 0
    if not args.no_evaluate:
        result = evaluate_aln_bundle(
            bundle, args.data, task_spec=task_spec("aln-metastasis"), device=str(device.torch_device())
        )
        if result is not None:
            summary = result.to_dict()
            (args.output / "evaluation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            print(
                f"held-out: {summary['cases']} cases, AUC {summary['auc']:.3f}, accuracy {summary['accuracy']:.3f} "
                f"at threshold {summary['threshold']:g}"
            )
    return 0

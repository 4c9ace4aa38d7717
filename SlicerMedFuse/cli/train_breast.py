"""``medfuse train breast-mass --data DIR --output DIR``: train one of the breast paper's networks.

The dataset is an nnU-Net raw folder whose ``dataset.json`` names the channels T1C, T2W (and PRE)::

    medfuse train breast-mass --data Dataset_Breast --output runs/breast --architecture proposed

After training, the held-out split (``imagesTs``/``labelsTs``) is segmented with the new bundle
and scored with the paper's metrics plus HD95 (``evaluation.json`` and a table on stdout);
``--no-evaluate`` skips it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from SlicerMedFuse.cli.train_options import add_run_options, run_training, simulated_flag
from SlicerMedFuse.progress import Progress

__all__ = ["add_parser"]


def add_parser(tasks: argparse._SubParsersAction) -> None:
    """Add ``breast-mass`` to the ``medfuse train`` task subparsers."""
    from SlicerMedFuse.breast.architectures import ARCHITECTURES

    p = tasks.add_parser(
        "breast-mass",
        help="breast mass segmentation (T1C master, T2W assistant; nnU-Net layout)",
        description="Train a breast-mass network on an nnU-Net raw dataset with channels named T1C, T2W (, PRE).",
    )
    p.add_argument("--data", required=True, type=Path, help="dataset folder (nnU-Net raw layout, channel names)")
    p.add_argument("--output", required=True, type=Path, help="output folder (checkpoints, log, bundle, evaluation)")
    p.add_argument("--architecture", choices=tuple(ARCHITECTURES), default="proposed", help="network of Table 1")
    p.add_argument("--width-divisor", type=int, default=1, help="divide the paper's widths by this (1: Table 1 sizes)")
    p.add_argument("--size", type=int, default=256, help="in-plane slice size the network sees (paper: 256)")
    p.add_argument("--subtraction", action="store_true", help="add the T1C - PRE channel (needs a PRE channel)")
    p.add_argument("--modality-dropout", type=float, default=0.2, help="drop probability of each assistant sequence")
    p.add_argument("--foreground", type=float, default=0.67, help="share of slices drawn from those with a mass")
    p.add_argument("--batch-size", type=int, default=4, help="slices per step (paper: 4)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--iterations", type=int, default=100, help="iterations per epoch")
    p.add_argument("--lr", type=float, default=1e-4, help="initial learning rate (paper: 1e-4, Adam)")
    p.add_argument("--no-evaluate", action="store_true", help="do not score the held-out split after training")
    add_run_options(p, model_id="medfuse-breast-mass")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.breast.training import BreastTrainingConfig, train_breast_mass
    from SlicerMedFuse.training.trainer import TrainerConfig

    config = BreastTrainingConfig(
        architecture=args.architecture,
        width_divisor=args.width_divisor,
        in_plane_size=args.size,
        use_subtraction=args.subtraction,
        batch_size=args.batch_size,
        foreground_probability=args.foreground,
        modality_dropout=args.modality_dropout,
        trainer=TrainerConfig(
            epochs=args.epochs,
            iterations_per_epoch=args.iterations,
            optimizer="adamw",
            learning_rate=args.lr,
            weight_decay=0.0,
            seed=args.seed,
        ),
        model_id=args.model_id,
        version=args.model_version,
        license=args.license,
    )
    bundle, device = run_training(
        args,
        train_breast_mass,
        args.data,
        args.output,
        config,
        simulated=simulated_flag(args),
        progress=progress,
    )
    if bundle is None:
        return 0
    if not args.no_evaluate:
        from SlicerMedFuse.breast.dataset_evaluation import evaluate_bundle_on_dataset
        from SlicerMedFuse.breast.evaluation import format_table
        from SlicerMedFuse.specs import task_spec

        result = evaluate_bundle_on_dataset(bundle, args.data, task_spec=task_spec("breast-mass"), device=device)
        if result is not None:
            (args.output / "evaluation.json").write_text(
                json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8"
            )
            print(format_table([(args.architecture, result.summary())]))
    return 0

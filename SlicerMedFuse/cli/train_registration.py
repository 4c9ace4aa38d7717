"""``medfuse train registration``: train TM-DCA on a Learn2Reg-style dataset and write a model bundle.

    medfuse train registration --data OASIS/ --output runs/tmdca
    torchrun --nproc_per_node 4 -m SlicerMedFuse train registration --data OASIS/ --output runs/tmdca

Defaults are the official OASIS recipe (NOTES A1): half-resolution grid, NCC + Dice (when labels
exist) + diffusion 1:1:1, Adam lr 1e-4 with polynomial decay, 500 epochs, batch 1. Training at
that scale needs a GPU; on a CPU use a small ``--shape`` and architecture for testing only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from SlicerMedFuse.cli.train_options import add_run_options, ints, run_training
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress

__all__ = ["add_parser"]


def _weights(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three weights (similarity, Dice, regulariser), got {text!r}")
    return values  # type: ignore[return-value]


def add_parser(tasks: argparse._SubParsersAction) -> None:
    """Add ``registration`` to the ``medfuse train`` task subcommands."""
    p = tasks.add_parser(
        "registration",
        help="TM-DCA deformable registration network (Learn2Reg layout)",
        description=(
            "Train the deformable cross-attention registration network (TM-DCA) unsupervised on a Learn2Reg-style "
            "dataset (dataset.json with training images or training_paired_images, imagesTr/, optional labelsTr/)."
        ),
    )
    p.add_argument("--data", required=True, type=Path, help="dataset folder (Learn2Reg layout)")
    p.add_argument("--output", required=True, type=Path, help="output folder (checkpoints, log, bundle)")
    p.add_argument("--shape", type=ints, help="network grid D,H,W (array order), multiples of 16 (default: half size)")
    p.add_argument("--window", type=ints, help="attention window D,H,W in tokens (default: shape / 16)")
    p.add_argument("--embed-dim", type=int, default=96, help="first-stage channels (paper config: 96)")
    p.add_argument("--depths", type=ints, default=(4, 4, 5), help="blocks per stage (4,4,5)")
    p.add_argument("--heads", type=ints, default=(8, 8, 8), help="attention heads per stage (8,8,8)")
    p.add_argument("--offset-kernels", type=ints, default=(7, 5, 3), help="offset network kernels per stage (7,5,3)")
    p.add_argument("--time-steps", type=int, default=12, help="decoder refinement steps (12)")
    p.add_argument("--similarity", choices=("ncc", "mse"), default="ncc")
    p.add_argument("--regularizer", choices=("diffusion", "bending"), default="diffusion")
    p.add_argument(
        "--weights", type=_weights, default=(1.0, 1.0, 1.0), help="similarity,Dice,regulariser weights (1,1,1)"
    )
    p.add_argument("--no-labels", action="store_true", help="ignore labelsTr (no Dice term)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--iterations", type=int, default=None, help="iterations per epoch (default: number of images)")
    p.add_argument("--lr", type=float, default=1e-4, help="initial learning rate (1e-4)")
    p.add_argument("--amp", action="store_true", help="mixed precision on CUDA (the official code trains in float16)")
    add_run_options(p, model_id="medfuse-registration-tmdca", simulated_option=False)
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.registration.training import RegistrationTrainingConfig, train_registration
    from SlicerMedFuse.registration.training_data import read_registration_dataset
    from SlicerMedFuse.training.trainer import TrainerConfig

    if not len(args.depths) == len(args.heads) == len(args.offset_kernels):
        raise UsageError("--depths, --heads and --offset-kernels need one value per stage (e.g. 4,4,5 8,8,8 7,5,3).")
    iterations = args.iterations or len(read_registration_dataset(args.data).images)
    trainer = TrainerConfig(
        epochs=args.epochs,
        iterations_per_epoch=iterations,
        optimizer="adamw",
        learning_rate=args.lr,
        weight_decay=0.0,
        grad_clip=0.0,
        seed=args.seed,
        amp=args.amp,
    )
    config = RegistrationTrainingConfig(
        input_shape=args.shape,
        window_size=args.window,
        embed_dim=args.embed_dim,
        depths=args.depths,
        num_heads=args.heads,
        offset_kernels=args.offset_kernels,
        time_steps=args.time_steps,
        similarity=args.similarity,
        regularizer=args.regularizer,
        weights=args.weights,
        use_labels=not args.no_labels,
        batch_size=args.batch_size,
        trainer=trainer,
        model_id=args.model_id,
        version=args.model_version,
        license=args.license,
    )
    run_training(
        args,
        train_registration,
        args.data,
        args.output,
        config,
        progress=progress,
    )
    return 0

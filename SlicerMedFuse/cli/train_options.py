"""Argument types and options shared by every ``medfuse train TASK`` command.

Each task's parser adds its own data and recipe options, then :func:`add_run_options` for what
every training run has: seed, resume, the bundle's identity and licence, device, threads and
progress (and, for datasets that may be simulated, ``--simulated``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from SlicerMedFuse.device import DEVICE_CHOICES
from SlicerMedFuse.progress import Progress, make_progress

__all__ = ["add_run_options", "floats", "ints", "progress_for", "run_training", "simulated_flag"]


def ints(text: str) -> tuple[int, ...]:
    """``"32,128,128"`` -> ``(32, 128, 128)`` (an argparse type)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def floats(text: str) -> tuple[float, ...]:
    """``"1,1,1.5"`` -> ``(1.0, 1.0, 1.5)`` (an argparse type)."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def progress_for(args: argparse.Namespace) -> Progress:
    """The progress reporter ``--progress`` asks for (a bar on a terminal by default)."""
    return make_progress(args.progress or ("bar" if sys.stderr.isatty() else "none"))


def simulated_flag(args: argparse.Namespace) -> bool | None:
    """``--simulated``: None lets the dataset.json's ``simulated`` flag decide."""
    return None if args.simulated == "auto" else args.simulated == "yes"


def add_run_options(parser: argparse.ArgumentParser, *, model_id: str, simulated_option: bool = True) -> None:
    """Add the options every training run has, and the progress factory the CLI calls."""
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/latest")
    parser.add_argument("--model-id", default=model_id, help="bundle id")
    parser.add_argument("--model-version", default="0.1.0", help="bundle version")
    parser.add_argument("--license", default="LicenseRef-see-training-data", help="licence of the trained weights")
    if simulated_option:
        parser.add_argument(
            "--simulated",
            choices=("auto", "yes", "no"),
            default="auto",
            help="training data simulated (auto: dataset.json)",
        )
    parser.add_argument(
        "--device", default="auto", help=f"{'|'.join(DEVICE_CHOICES)} or cuda:N (under torchrun: cuda:LOCAL_RANK)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default=None)
    parser.set_defaults(progress_factory=progress_for)


def run_training(
    args: argparse.Namespace, train: Callable[..., Path | None], *positional: Any, progress: Progress, **options: Any
) -> tuple[Path | None, Any]:
    """Run a task's ``train(*positional, **options)`` on the device ``--device`` / ``--threads`` ask for.

    Adds what every task's train function takes (``dist``, ``progress``, ``resume`` and the command
    line for the bundle), joins the process group under torchrun and always leaves it, and prints
    the bundle folder.

    Returns:
        ``(bundle, device)``: the bundle folder (None on ranks other than 0) and the resolved
        :class:`SlicerMedFuse.device.Device`, for an evaluation after training.
    """
    from SlicerMedFuse.device import resolve_device
    from SlicerMedFuse.training.distributed import init_distributed

    device = resolve_device(args.device, threads=args.threads)
    dist = init_distributed(device)
    try:
        bundle = train(
            *positional,
            dist=dist,
            progress=progress,
            resume=args.resume,
            command=["medfuse", *sys.argv[1:]],
            **options,
        )
    finally:
        dist.close()
    if bundle is not None:
        print(f"bundle: {bundle}")
    return bundle, device

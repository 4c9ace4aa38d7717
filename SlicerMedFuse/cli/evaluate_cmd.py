"""``medfuse evaluate TASK --pred DIR --gt DIR``: score predictions with the paper's metric."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from SlicerMedFuse.io import write_json_atomic
from SlicerMedFuse.progress import Progress

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("evaluate", help="score predicted label maps against ground truth")
    tasks = parser.add_subparsers(dest="evaluate_task", metavar="TASK", required=True)
    p = tasks.add_parser(
        "hemorrhage",
        help="BHSD Table 1: Dice per class (EDH IPH IVH SAH SDH, mean) and false positives",
        description="Dice per class (MONAI) over the cases containing the class, mean Dice, false-positive rate.",
    )
    p.add_argument("--pred", required=True, type=Path, help="folder of predicted label maps (named like the labels)")
    p.add_argument("--gt", required=True, type=Path, help="folder of ground-truth label maps (e.g. labelsTs)")
    p.add_argument("--title", default="model", help="row title of the table")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--output", type=Path, help="also write the full JSON (per case) here")
    p.set_defaults(handler=_handle_hemorrhage)


def _handle_hemorrhage(args: argparse.Namespace, progress: Progress | None) -> int:
    from SlicerMedFuse.hemorrhage.evaluation import evaluate_folders, format_table

    result = evaluate_folders(args.pred, args.gt)
    if args.output is not None:
        write_json_atomic(result.to_dict(), args.output)
    if args.json:
        summary = {k: v for k, v in result.to_dict().items() if k != "cases"}
        print(json.dumps(summary, indent=2))
    else:
        print(format_table(result, args.title))
    return 0

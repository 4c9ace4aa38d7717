"""``medfuse run TASK --input ROLE=PATH ... --output [ROLE=]PATH ... [--param NAME=VALUE ...]``."""

from __future__ import annotations

import argparse
import json
import sys

from SlicerMedFuse.api import run_task
from SlicerMedFuse.device import DEVICE_CHOICES
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import JsonLinesProgress, Progress, make_progress


def _pairs(values: list[str] | None, option: str, allow_bare: bool = False) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep and allow_bare:
            key, rest = "", value
        elif not sep or not key or not rest:
            raise UsageError(f"{option} takes NAME=VALUE; got {value!r}.")
        if key in pairs:
            raise UsageError(f"{option} {key or '(primary)'} is given twice.")
        pairs[key] = rest
    return pairs


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run a task on images",
        description="Run a task. Inputs are NIfTI, NRRD, MHA files or DICOM folders (FOLDER#SERIES_UID picks a series).",
    )
    parser.add_argument("task", help="task name (see 'medfuse tasks')")
    parser.add_argument("--input", "-i", action="append", metavar="ROLE=PATH", help="an input image by role")
    parser.add_argument(
        "--output",
        "-o",
        action="append",
        metavar="[ROLE=]PATH",
        help="where to write an output (bare PATH: the primary output)",
    )
    parser.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="a task parameter")
    parser.add_argument(
        "--device", default="auto", help=f"compute device: {'|'.join(DEVICE_CHOICES)} or cuda:N (default auto)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--model", default=None, help="model bundle id or folder (default: the task's own)")
    parser.add_argument("--report", default=None, metavar="PATH", help="also write the job report as JSON here")
    parser.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        default=None,
        help="progress display (default: bar on a terminal, else none)",
    )
    parser.add_argument("--keep-work-dir", action="store_true", help="keep the scratch folder (debugging)")
    parser.set_defaults(handler=handle, progress_factory=_progress_for)


def _progress_for(args: argparse.Namespace) -> Progress:
    return make_progress(args.progress or ("bar" if sys.stderr.isatty() else "none"))


def handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.tasks.registry import get_task

    task = get_task(args.task)
    inputs = _pairs(args.input, "--input")
    raw_outputs = _pairs(args.output, "--output", allow_bare=True)
    params = _pairs(args.param, "--param")
    if not raw_outputs and task.spec.outputs:
        raise UsageError("Give at least one --output PATH so the result is written somewhere.")
    result = run_task(
        task,
        inputs,
        _resolve_primary(args.task, raw_outputs),
        params,
        device=args.device,
        threads=args.threads,
        progress=progress,
        report_path=args.report,
        model=args.model,
        keep_work_dir=args.keep_work_dir,
    )
    if not isinstance(progress, JsonLinesProgress):  # the JSON-lines 'result' event already holds the report
        summary = task.summary(result.report)
        if summary is not None:  # a result that is not an image (e.g. a probability): JSON on stdout
            print(json.dumps(summary, indent=2))
        for role, path in result.paths.items():
            print(f"{role}: {path}")
        timings = result.report.get("timings_s", {})
        print(f"done in {timings.get('total', 0):.1f} s on {result.report['device']['name']}", file=sys.stderr)
    return 0


def _resolve_primary(task_name: str, outputs: dict[str, str]) -> dict[str, str]:
    if "" not in outputs:
        return outputs
    from SlicerMedFuse.tasks.registry import get_task

    primary = get_task(task_name).spec.primary_output.role
    if primary in outputs:
        raise UsageError(f"--output {primary} is given twice (once as a bare path).")
    resolved = {role: path for role, path in outputs.items() if role}
    resolved[primary] = outputs[""]
    return resolved

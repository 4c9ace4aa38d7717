"""``medfuse batch TASK (--cases FOLDER --input ROLE=PATTERN ... | --csv TABLE) --out FOLDER [...]``."""

from __future__ import annotations

import argparse
import sys

from SlicerMedFuse.cli.run_cmd import _pairs, _progress_for
from SlicerMedFuse.device import DEVICE_CHOICES
from SlicerMedFuse.errors import ExitCode, UsageError
from SlicerMedFuse.progress import Progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "batch",
        help="run a task over a cohort (local process pool or Dask distributed)",
        description=(
            "Run a task on every case of a cohort: a folder with one sub-folder per case (--cases, files picked by "
            "--input ROLE=PATTERN) or a CSV table (--csv: case_id, one column per input role, optional parameter "
            "columns). Each case's outputs go to OUT/CASE_ID/, complete or not at all; OUT/results.csv and "
            "OUT/results.json list every case. Exit 0 when every case is ok or skipped, 3 when a case failed."
        ),
    )
    parser.add_argument("task", help="task name (see 'medfuse tasks')")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cases", metavar="FOLDER", help="cohort folder: one sub-folder per case")
    source.add_argument("--csv", metavar="TABLE", help="cohort table (CSV): case_id, input roles, parameters")
    parser.add_argument(
        "--input", "-i", action="append", metavar="ROLE=PATTERN", help="with --cases: glob of a role's file in a case"
    )
    parser.add_argument("--out", "-o", required=True, metavar="FOLDER", help="output folder (one sub-folder per case)")
    parser.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="a task parameter for every case")
    parser.add_argument(
        "--write", action="append", metavar="ROLE", help="output role to write per case (default: the primary output)"
    )
    parser.add_argument("--format", default=".nii.gz", choices=(".nii.gz", ".nrrd", ".mha"), help="output files")
    parser.add_argument("--resume", action="store_true", help="keep finished cases, run failed and missing ones")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: from cores and memory)")
    parser.add_argument(
        "--retries", type=int, default=2, help="further attempts when a case's worker fails (default 2)"
    )
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask distributed scheduler")
    dask.add_argument("--cluster", choices=("local",), help="run on a Dask LocalCluster on 127.0.0.1")
    parser.add_argument(
        "--device", default="auto", help=f"compute device: {'|'.join(DEVICE_CHOICES)} or cuda:N (default auto)"
    )
    parser.add_argument("--model", default=None, help="model bundle id or folder (default: the task's own)")
    parser.add_argument(
        "--progress", choices=("bar", "json", "none"), default=None, help="default: bar on a terminal, else none"
    )
    parser.set_defaults(handler=handle, progress_factory=_progress_for)


def handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.batch import BatchOptions, cases_from_csv, cases_from_folder, run_batch
    from SlicerMedFuse.specs import task_spec

    spec = task_spec(args.task)
    params = _pairs(args.param, "--param")
    if (args.workers is not None and args.workers < 1) or args.retries < 0:
        raise UsageError("--workers must be at least 1 and --retries at least 0.")
    if args.scheduler is not None and not args.scheduler.startswith(("tcp://", "tls://")):
        raise UsageError(f"--scheduler takes tcp://HOST:PORT (or tls://); got {args.scheduler!r}.")
    if args.cases is not None:
        patterns = _pairs(args.input, "--input")
        if not patterns:
            raise UsageError("With --cases give each input's file pattern, e.g. --input volume='*.nii.gz'.")
        cases = cases_from_folder(args.cases, patterns, spec, params)
    else:
        if args.input:
            raise UsageError("--input patterns are for --cases; with --csv the table's columns name the inputs.")
        cases = cases_from_csv(args.csv, spec, params)
    options = BatchOptions(
        workers=args.workers,
        scheduler=args.scheduler,
        local_cluster=args.cluster == "local",
        retries=args.retries,
        resume=args.resume,
        write_roles=tuple(args.write) if args.write else None,
        extension=args.format,
        device=args.device,
        model=args.model,
    )
    result = run_batch(args.task, cases, args.out, options, progress=progress, cohort_root=args.cases)
    counts = result.counts
    print(
        f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['failed']} failed in {result.seconds:.1f} s; "
        f"results: {result.csv_path}",
        file=sys.stderr,
    )
    return ExitCode.INPUT if counts["failed"] else ExitCode.OK

"""``medfuse demo``: fetch a real sample scan (or use yours) and run the main jobs on it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from SlicerMedFuse.progress import Progress, make_progress
from SlicerMedFuse.sample_data import SAMPLES


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("demo", help="run the main jobs on a real sample scan and write previews")
    parser.add_argument("--output", default="demo-output", help="output folder (default ./demo-output)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--sample", choices=sorted(SAMPLES), default="head-ct", help="sample scan to download (default head-ct)"
    )
    source.add_argument("--input", help="use this image instead of a sample")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default=None)
    parser.set_defaults(
        handler=handle,
        progress_factory=lambda args: make_progress(args.progress or ("bar" if sys.stderr.isatty() else "none")),
    )


def handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.demo import run_demo
    from SlicerMedFuse.sample_data import fetch_sample

    if args.input:
        scan = Path(args.input)
    else:
        print(f"sample: {SAMPLES[args.sample].description}", file=sys.stderr)
        scan = fetch_sample(args.sample)
    summary = run_demo(scan, Path(args.output), progress)
    for name, step in summary["steps"].items():
        if "skipped" in step:
            print(f"{name}: skipped, {step['skipped']}")
        else:
            print(f"{name}: preview {step['preview']} ({step['seconds']} s; outputs and scores in summary.json)")
    print(f"summary: {Path(args.output) / 'summary.json'}")
    return 0

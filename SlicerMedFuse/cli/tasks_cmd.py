"""``medfuse tasks [NAME] [--json]``: what each task takes, gives, labels and lets you tune."""

from __future__ import annotations

import argparse
import json

from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.specs import all_specs, task_spec


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tasks", help="list tasks with their inputs, outputs, labels and parameters")
    parser.add_argument("name", nargs="?", help="show one task")
    parser.add_argument("--json", action="store_true", help="print the task contracts as JSON")
    parser.set_defaults(handler=handle)


def format_spec(spec: TaskSpec) -> str:
    lines = [f"{spec.name}: {spec.title}", f"  {spec.summary}", "  inputs:"]
    for item in spec.inputs:
        need = "required" if item.required else "optional"
        lines.append(f"    {item.role:<12} {item.kind}, {'/'.join(item.modalities)}, {need}  {item.description}")
    lines.append("  outputs:" if spec.outputs else "  outputs: none (the result is in the report: --report PATH)")
    for item in spec.outputs:
        lines.append(f"    {item.role:<12} {item.kind}{' (primary)' if item.primary else ''}  {item.description}")
    if spec.labels:
        lines.append("  labels:")
        for label in spec.labels:
            lines.append(f"    {label.value:>3} {label.name:<28} rgb{label.color}")
    if spec.parameters:
        lines.append("  parameters:")
        for parameter in spec.parameters:
            lines.append(f"    {parameter.describe()}  {parameter.description}")
    if spec.references:
        lines.append("  references:")
        lines.extend(f"    {reference}" for reference in spec.references)
    return "\n".join(lines)


def handle(args: argparse.Namespace, _progress) -> int:
    # read from the torch-free specs: listing tasks loads no network code
    specs = [task_spec(args.name)] if args.name else all_specs()
    if args.json:
        print(json.dumps([spec.to_dict() for spec in specs], indent=2))
    else:
        print("\n\n".join(format_spec(spec) for spec in specs))
    return 0

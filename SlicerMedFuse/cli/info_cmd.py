"""``medfuse info``: versions, compute devices and where models are cached."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import metadata

import SlicerMedFuse

PACKAGES = ("torch", "monai", "SimpleITK", "numpy", "safetensors")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("info", help="versions, devices and the model cache folder")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=handle)


def collect() -> dict:
    from SlicerMedFuse.device import available_devices
    from SlicerMedFuse.models.store import ModelStore

    versions = {"SlicerMedFuse": SlicerMedFuse.__version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "platform": f"{platform.system()} {platform.machine()}",
        "devices": available_devices(),
        "model_store": str(ModelStore().root),
    }


def handle(args: argparse.Namespace, _progress) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for name, version in info["versions"].items():
        print(f"{name:<14} {version or 'not installed'}")
    devices = info["devices"]
    print(f"{'platform':<14} {info['platform']}")
    print(f"{'cpu':<14} {devices['cpu']['cores']} cores, torch uses {devices['cpu']['threads']} threads")
    gpus = ", ".join(f"cuda:{g['index']} {g['name']} ({g['memory_gib']} GiB)" for g in devices["cuda"]) or "none"
    print(f"{'cuda':<14} {gpus}")
    print(f"{'mps':<14} {'available' if devices['mps'] else 'no'}")
    print(f"{'model store':<14} {info['model_store']}")
    sys.stdout.flush()
    return 0

"""``medfuse demo``: the main jobs on a real sample scan, with outputs, reports and PNG previews.

Each task contributes a :class:`DemoStep`; the demo runs every step whose sample is available and
writes ``<output>/<step>/`` with the result volume(s), ``report.json`` and ``preview.png``, plus a
``summary.json`` over all steps.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.io import read_image, write_json_atomic
from SlicerMedFuse.preview import save_preview
from SlicerMedFuse.progress import Progress

__all__ = ["DEMO_STEPS", "DemoStep", "run_demo"]


@dataclasses.dataclass(frozen=True)
class DemoStep:
    """One demonstrated job: runs on a sample scan and writes into its own folder."""

    name: str
    description: str
    run: Callable[[Path, Path, Progress], dict[str, Any]]


def _superres_step(scan: Path, folder: Path, progress: Progress) -> dict[str, Any]:
    output = folder / "superres_bspline.nii.gz"
    result = run_task(
        "superres",
        {"volume": scan},
        {"volume": output},
        {"method": "bspline"},
        progress=progress,
        report_path=folder / "report.json",
    )
    original = read_image(scan)
    is_ct = sitk.GetArrayViewFromImage(original).min() < -500
    save_preview(
        [
            (f"input {original.GetSpacing()[2]:.2f} mm slices", original),
            (
                f"super-resolved (B-spline) {result.report['output_spacing_mm'][2]:.2f} mm slices",
                result.images["volume"],
            ),
        ],
        folder / "preview.png",
        window=(-40.0, 120.0) if is_ct else None,  # brain window for CT (BHSD's clip range)
    )
    return {"output": str(output), "preview": str(folder / "preview.png"), "report": result.report}


DEMO_STEPS: tuple[DemoStep, ...] = (
    DemoStep("superres", "Through-plane super-resolution to isotropic voxels (interpolation baseline)", _superres_step),
)


def run_demo(scan: Path, output_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Run every demo step on ``scan`` and write results under ``output_dir``."""
    progress = progress or Progress()
    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"scan": str(scan), "steps": {}}
    for index, step in enumerate(DEMO_STEPS):
        folder = output_dir / step.name
        folder.mkdir(exist_ok=True)
        progress.log(f"demo step '{step.name}': {step.description}")
        started = time.perf_counter()
        span = progress.span(index / len(DEMO_STEPS), (index + 1) / len(DEMO_STEPS))
        outcome = step.run(scan, folder, span)
        outcome["seconds"] = round(time.perf_counter() - started, 2)
        summary["steps"][step.name] = outcome
    write_json_atomic(summary, output_dir / "summary.json")
    return summary

"""``medfuse demo``: the main jobs on a real sample scan, with outputs, reports and PNG previews.

Each task contributes a :class:`DemoStep`; the demo runs every step whose sample is available and
writes ``<output>/<step>/`` with the result volume(s), ``report.json`` and ``preview.png``, plus a
``summary.json`` over all steps.
"""

from __future__ import annotations

import dataclasses
import os
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
    is_ct = _is_ct(original)
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


#: Seed of the demo's simulated bleeds: outside the demo model's training seeds (0-59) and its
#: held-out benchmark seeds (5000-5029), so the demo shows an unseen case.
DEMO_BLEED_SEED = 9001
DEMO_BLEED_CLASSES = ("IPH", "IVH", "SDH")


def _is_ct(image: sitk.Image) -> bool:
    return float(sitk.GetArrayViewFromImage(image).min()) < -500  # air in HU; MRI has no negative values


def _hemorrhage_step(scan: Path, folder: Path, progress: Progress) -> dict[str, Any]:
    """Paint seeded simulated bleeds into the real CT, segment them with the default model, score them."""
    from SlicerMedFuse.hemorrhage.evaluation import evaluate_pair
    from SlicerMedFuse.hemorrhage.simulator import simulate_hemorrhage
    from SlicerMedFuse.io import write_image

    original = read_image(scan)
    if not _is_ct(original):
        return {"skipped": "the sample scan is not a CT (the hemorrhage model needs a head CT in HU)"}
    progress.update(0.0, "painting simulated bleeds into the real CT")
    case = simulate_hemorrhage(original, DEMO_BLEED_CLASSES, seed=DEMO_BLEED_SEED)
    simulated_path, truth_path = folder / "ct_with_simulated_bleeds.nii.gz", folder / "simulated_truth.nii.gz"
    write_image(case.image, simulated_path)
    write_image(case.labels, truth_path)
    output = folder / "hemorrhage_labels.nii.gz"
    result = run_task(
        "hemorrhage",
        {"ct": simulated_path},
        {"labels": output},
        progress=progress.span(0.1, 1.0),
        report_path=folder / "report.json",
    )
    scores = evaluate_pair(result.images["labels"], case.labels, "demo")
    save_preview(
        [
            ("head CT with simulated bleeds (brain window)", case.image),
            ("simulated truth (labels x 20 HU)", sitk.Cast(case.labels, sitk.sitkFloat32) * 20.0),
            ("demo model's segmentation (labels x 20 HU)", sitk.Cast(result.images["labels"], sitk.sitkFloat32) * 20.0),
        ],
        folder / "preview.png",
        window=(-40.0, 120.0),
    )
    return {
        "output": str(output),
        "preview": str(folder / "preview.png"),
        "simulated_ml": {str(k): round(float(v), 2) for k, v in case.volumes_ml.items()},
        "dice": {name: None if value is None else round(value, 3) for name, value in scores.dice.items()},
        "model": result.report.get("model", {}),
        "note": "Simulated bleeds in a real normal head CT, segmented by a demo model trained on simulated bleeds; not for clinical use.",
    }


#: Seed of the demo's breast phantom study: outside the breast demo model's training and held-out phantoms.
DEMO_PHANTOM_SEED = 9002
#: The real breast MRI crop (PyRadiomics' test case ``breast1``, BSD-3-Clause): image and lesion mask.
BREAST_SAMPLE_FILES = ("pyradiomics_breast1_image.nrrd", "pyradiomics_breast1_label.nrrd")


def breast_sample_folder() -> Path | None:
    """The folder holding :data:`BREAST_SAMPLE_FILES`: ``$MEDFUSE_BREAST_SAMPLE``, else the project's
    ``shared/data/breast_mri`` beside the repository; None when neither has them."""
    candidates = [
        os.environ.get("MEDFUSE_BREAST_SAMPLE"),
        Path(__file__).resolve().parents[2] / "shared/data/breast_mri",
    ]
    for candidate in candidates:
        if candidate and all((Path(candidate) / name).is_file() for name in BREAST_SAMPLE_FILES):
            return Path(candidate)
    return None


def _segment_breast(images: dict[str, Path], truth: sitk.Image, name: str, folder: Path, progress: Progress):
    from SlicerMedFuse.breast.evaluation import score_case

    output = folder / f"{name}_mass.nii.gz"
    result = run_task(
        "breast-mass", images, {"mass": output}, progress=progress, report_path=folder / f"{name}_report.json"
    )
    scores = score_case(result.images["mass"], truth, name)
    summary = {
        "inputs": sorted(images),
        "output": str(output),
        "dice_percent": None if scores.dice is None else round(scores.dice, 1),
        "predicted_voxels": scores.predicted_voxels,
        "truth_voxels": scores.truth_voxels,
    }
    return result.images["mass"], summary


def _breast_step(scan: Path, folder: Path, progress: Progress) -> dict[str, Any]:
    """Segment a T1C + T2W phantom study (the demo model's own domain) and the real breast crop (T1C only).

    The real crop has one sequence, so the model runs without its T2W assistant there: the result shows
    how a phantom-trained model does on real data, not how well the method can do.
    """
    from SlicerMedFuse.breast.phantom import generate_phantom
    from SlicerMedFuse.io import write_image

    progress.update(0.0, "rendering a two-sequence breast phantom study")
    phantom = generate_phantom(DEMO_PHANTOM_SEED, sequences=("t1c", "t2w"))
    paths = {role: folder / f"phantom_{role}.nii.gz" for role in ("t1c", "t2w")}
    for role, path in paths.items():
        write_image(phantom.images[role], path)
    _, phantom_summary = _segment_breast(paths, phantom.mass, "phantom", folder, progress.span(0.1, 0.6))
    rows = [
        ("phantom T1C", phantom.images["t1c"]),
        ("phantom T2W", phantom.images["t2w"]),
    ]
    outcome: dict[str, Any] = {"phantom": phantom_summary}
    sample = breast_sample_folder()
    if sample is None:
        outcome["real_crop"] = {"skipped": "the real breast crop is not here; set MEDFUSE_BREAST_SAMPLE to its folder"}
    else:
        crop = read_image(sample / BREAST_SAMPLE_FILES[0])
        crop_mass, outcome["real_crop"] = _segment_breast(
            {"t1c": sample / BREAST_SAMPLE_FILES[0]},
            sitk.ReadImage(str(sample / BREAST_SAMPLE_FILES[1])),
            "real_crop",
            folder,
            progress.span(0.6, 1.0),
        )
        rows += [
            ("real crop (T1C only)", sitk.Cast(crop, sitk.sitkFloat32)),
            ("real crop: segmented mass (x 200)", sitk.Cast(crop_mass, sitk.sitkFloat32) * 200.0),
        ]
    save_preview(rows, folder / "preview.png", window=(0.0, 250.0))
    outcome["preview"] = str(folder / "preview.png")
    outcome["note"] = (
        "The demo model is trained on breast phantoms only; on the real crop it runs without T2W. Not for clinical use."
    )
    return outcome


DEMO_STEPS: tuple[DemoStep, ...] = (
    DemoStep("superres", "Through-plane super-resolution to isotropic voxels (interpolation baseline)", _superres_step),
    DemoStep(
        "hemorrhage",
        "Simulated bleeds painted into the real head CT, segmented by the shipped demo model (5 BHSD classes)",
        _hemorrhage_step,
    ),
    DemoStep(
        "breast",
        "Breast mass segmentation: a T1C + T2W phantom study and the real breast MRI crop (shipped phantom-trained model)",
        _breast_step,
    ),
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

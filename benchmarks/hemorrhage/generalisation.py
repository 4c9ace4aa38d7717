"""Hemorrhage generalisation benchmark (issue 15): held-out simulated scanners, the real normal CT
re-scanned at every thickness, the old default in the same table, and BLAST-CT on the same cases.

Usage (repository root, project venv)::

    # datasets (each is a pure function of its seeds; see make_simulated_dataset.py)
    python benchmarks/hemorrhage/make_simulated_dataset.py WORK/heldout_scanners --bleed-train 0 \\
        --no-bleed-train 1 --bleed-test 30 --no-bleed-test 30 --seed 3 --acquisitions held-out
    python benchmarks/hemorrhage/make_simulated_dataset.py WORK/heldout_051 --bleed-train 0 \\
        --no-bleed-train 1 --bleed-test 24 --no-bleed-test 6          # 0.5.1's own held-out set (seeds 5000-5029)
    python benchmarks/hemorrhage/generalisation.py sweep WORK/normal_sweep  # the real normal CT, 1.5-7.5 mm x tilt 0 / 18.5
    # every model on every dataset (one child process per model and dataset), BLAST-CT on a subset, tables
    python benchmarks/hemorrhage/generalisation.py run --work WORK \\
        --model new=BUNDLE_0.6.1 --model old=BUNDLE_0.5.1 \\
        --data scanners=WORK/heldout_scanners --data own=WORK/heldout_051 --data sweep=WORK/normal_sweep \\
        [--bench-python /work/bench-venv-hem/bin/python --blast-cases scanners:sim_5030,sim_5031] \\
        --report benchmarks/results/hemorrhage_generalisation

* **Held-out scanners** (``--acquisitions held-out``): slices 5-7.5 mm AND gantry tilt 18-25 degrees
  (a corner training never draws), half with the ``very_sharp`` kernel training never sees, anatomy
  varied, seeds 35000-35059 (disjoint from training's 20000-20111 and validation's 45000-45029).
  Dice per class on the 30 bleed cases (BHSD Table 1 layout), false-positive mL per class and in
  all on the 30 bleed-free cases (median, mean, max).
* **Own held-out set**: 0.5.1's benchmark cases (the source CT's own acquisition, seeds 5000-5029).
* **Normal sweep**: the real normal head CT (the one the simulator paints into, so not an
  independent check) re-scanned at 1.5, 2.5, 3.75, 5, 6 and 7.5 mm, without tilt and at 18.5
  degrees (standard kernel, 2 HU noise at 5 mm), no anatomy change: every voxel called a bleed is false.
* Each model predicts each dataset in one child process (model loaded once, nnU-Net's "predictor
  built once"), measured by ``benchmarks/harness.py`` (wall, CPU, peak RSS read in the child);
  per-case times come from the child. As shipped: overlap 0.5, no mirroring, the bundle's own
  post-processing.
* **BLAST-CT** (one member, its real-scan weights) on the cases named by ``--blast-cases``; its
  haemorrhage classes (IPH, EAH = EDH + SDH, IVH) count as bleeds, oedema is listed apart.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))  # benchmarks/: the shared harness

DEFAULT_CT = REPO.parent / "shared" / "data" / "head_ct" / "invesalius_ct0051_head.nii.gz"
DEFAULT_BLAST = REPO.parent / "shared" / "peers" / "blast-ct"
CLASSES = ("EDH", "IPH", "IVH", "SAH", "SDH")
#: The sweep of the real normal CT: slice thickness (= spacing) x gantry tilt.
SWEEP_THICKNESS_MM = (1.5, 2.5, 3.75, 5.0, 6.0, 7.5)
SWEEP_TILT_DEG = (0.0, 18.5)


# --- datasets --------------------------------------------------------------------------------------


def write_sweep(output: Path, ct_path: Path) -> Path:
    """The real normal CT re-scanned at every sweep setting, nnU-Net layout with empty labels."""
    import numpy as np
    import SimpleITK as sitk

    from SlicerMedFuse.hemorrhage.acquisition import Acquisition, simulate_acquisition
    from SlicerMedFuse.io import write_image, write_json_atomic

    ct = sitk.ReadImage(str(ct_path))
    (output / "imagesTs").mkdir(parents=True, exist_ok=True)
    (output / "labelsTs").mkdir(parents=True, exist_ok=True)
    cases = []
    for tilt in SWEEP_TILT_DEG:
        for thickness in SWEEP_THICKNESS_MM:
            case = f"normal_{thickness:.2f}mm_tilt{tilt:.1f}".replace(".", "p")
            acquisition = Acquisition(
                slice_thickness_mm=thickness, slice_spacing_mm=thickness, tilt_deg=tilt, inplane_mm=0.5, noise_hu=2.0
            )
            image_path = output / "imagesTs" / f"{case}_0000.nii.gz"
            if not image_path.is_file():
                image, _ = simulate_acquisition(ct, None, acquisition, np.random.default_rng(0))
                labels = sitk.Image(image.GetSize(), sitk.sitkUInt8)
                labels.CopyInformation(image)
                write_image(labels, output / "labelsTs" / f"{case}.nii.gz")
                write_image(image, image_path)
            cases.append({"case": case, "bleed": False, "acquisition": acquisition.to_dict()})
    dataset = {
        "name": "MedFuseNormalSweep",
        "description": f"The real normal head CT {ct_path.name} re-scanned at several thicknesses and tilts.",
        "channel_names": {"0": "CT"},
        "labels": {"background": 0, "EDH": 1, "IPH": 2, "IVH": 3, "SAH": 4, "SDH": 5},
        "numTraining": 0,
        "file_ending": ".nii.gz",
        "simulated": True,
        "simulation": {"cases": {"test": cases}},
    }
    write_json_atomic(dataset, output / "dataset.json")
    return output


def test_cases(data: Path) -> list[dict[str, Any]]:
    """The dataset's held-out cases with their records (bleed flag, acquisition)."""
    dataset = json.loads((data / "dataset.json").read_text(encoding="utf-8"))
    cases = dataset["simulation"]["cases"]["test"]
    for case in cases:
        case["image"] = str(data / "imagesTs" / f"{case['case']}_0000.nii.gz")
        case["labels"] = str(data / "labelsTs" / f"{case['case']}.nii.gz")
    return cases


# --- the child: one model predicts one dataset -----------------------------------------------------


def predict(model: Path, data: Path, output: Path, threads: int) -> dict[str, Any]:
    """Segment every held-out case of ``data`` with one model loaded once; per-case wall times."""
    import SimpleITK as sitk

    from SlicerMedFuse.device import resolve_device
    from SlicerMedFuse.hemorrhage.inference import segment_hemorrhage
    from SlicerMedFuse.models.bundle import keep_loaded_bundles
    from SlicerMedFuse.specs import task_spec

    keep_loaded_bundles()
    device = resolve_device("cpu", threads=threads)
    spec = task_spec("hemorrhage")
    output.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    for case in test_cases(data):
        target = output / f"{case['case']}.nii.gz"
        started = time.perf_counter()
        result = segment_hemorrhage(sitk.ReadImage(case["image"]), str(model), task_spec=spec, device=device)
        sitk.WriteImage(result.labels, str(target), True)
        seconds[case["case"]] = round(time.perf_counter() - started, 2)
    record = {"model": str(model), "data": str(data), "threads": threads, "seconds_per_case": seconds}
    (output / "timings.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


# --- scoring ---------------------------------------------------------------------------------------


def score(pred_dir: Path, data: Path) -> dict[str, Any]:
    """Dice per class on bleed cases (BHSD Table 1), false-positive mL per class on bleed-free cases."""
    import SimpleITK as sitk

    from SlicerMedFuse.hemorrhage.evaluation import evaluate_pair

    cases = test_cases(data)
    bleed_dice: dict[str, list[float]] = {name: [] for name in CLASSES}
    free_fp: list[dict[str, float]] = []
    per_case: dict[str, Any] = {}
    for case in cases:
        scores = evaluate_pair(
            sitk.ReadImage(str(pred_dir / f"{case['case']}.nii.gz")), sitk.ReadImage(case["labels"]), case["case"]
        )
        per_case[case["case"]] = {"dice": scores.dice, "fp_ml": scores.fp_volume_ml, "bleed": case["bleed"]}
        if case["bleed"]:
            for name in CLASSES:
                if scores.dice[name] is not None:
                    bleed_dice[name].append(float(scores.dice[name]))
        else:
            free_fp.append({name: float(scores.fp_volume_ml[name]) for name in CLASSES})
    dice = {name: (statistics.fmean(v) if v else None) for name, v in bleed_dice.items()}
    available = [v for v in dice.values() if v is not None]
    totals = [sum(fp.values()) for fp in free_fp]
    return {
        "dice": dice,
        "cases_with_class": {name: len(v) for name, v in bleed_dice.items()},
        "mean_dice": statistics.fmean(available) if available else None,
        "bleed_cases": sum(1 for c in cases if c["bleed"]),
        "free_cases": len(free_fp),
        "fp_ml_mean": {name: (statistics.fmean(fp[name] for fp in free_fp) if free_fp else None) for name in CLASSES},
        "fp_ml_total": {
            "median": statistics.median(totals) if totals else None,
            "mean": statistics.fmean(totals) if totals else None,
            "max": max(totals) if totals else None,
        },
        "per_case": per_case,
    }


def blast_fp_ml(prediction: Path) -> dict[str, float]:
    """BLAST-CT's volume per class (mL) of one prediction."""
    import numpy as np
    import SimpleITK as sitk

    labels = sitk.ReadImage(str(prediction))
    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel(), minlength=5)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    names = {"IPH": 1, "EAH": 2, "oedema": 3, "IVH": 4}
    return {name: round(float(counts[value]) * voxel_ml, 3) for name, value in names.items()}

"""Benchmark a hemorrhage bundle: held-out Dice (BHSD Table 1 layout), false positives, time and peak memory.

Usage::

    python benchmarks/hemorrhage/evaluate_model.py --model BUNDLE_DIR --data SIM_DATASET --output OUT_DIR \
        [--ct ../shared/data/head_ct/invesalius_ct0051_head.nii.gz] [--threads 2] [--mirroring] [--large]
    python benchmarks/hemorrhage/evaluate_model.py --compare NAME=OUT_DIR [NAME=OUT_DIR ...] --report RESULTS_STEM

1. Every held-out case (``imagesTs``) is segmented through ``medfuse run hemorrhage`` in its own
   process (wall time, CPU time and peak RSS in MiB of that process from ``benchmarks/harness.py``:
   VmHWM read in the process itself, so this driver's imports do not count); predictions go to
   ``OUT_DIR/pred`` and are scored against ``labelsTs`` with ``medfuse evaluate hemorrhage``'s code.
2. The real normal head CT is segmented the same way: every voxel called hemorrhage is a false positive.
3. ``--large``: the real CT resampled to 512 x 512 x 40 (BHSD-like grid) for the timing of the issue.

Writes ``OUT_DIR/results.json`` and prints the tables. ``--compare`` puts several such results
(e.g. the single-window and the multi-window model, same schedule, same held-out cases) side by
side in BHSD's Table 1 layout and writes ``RESULTS_STEM.json`` and ``RESULTS_STEM.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from SlicerMedFuse.hemorrhage.evaluation import evaluate_folders, format_table
from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import peak_cell, run_measured, stored_peak_mib  # noqa: E402

#: What each segmentation run records about its cost (seconds, MiB, how the peak was read).
MEASURED = ("wall_s", "cpu_s", "peak_rss_mib", "peak_method")
DEFAULT_CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "head_ct" / "invesalius_ct0051_head.nii.gz"


def run_case(image: Path, output: Path, model: Path, threads: int, mirroring: bool, overlap: float) -> dict[str, Any]:
    """Segment one CT in a fresh process; returns its report, wall and CPU time (s) and peak RSS (MiB)."""
    report = output.with_name(output.name.replace(".nii.gz", ".json"))
    arguments = [
        "run", "hemorrhage", "--input", f"ct={image}", "--output", str(output),
        "--model", str(model), "--threads", str(threads), "--device", "cpu", "--report", str(report),
        "--param", f"mirroring={str(mirroring).lower()}", "--param", f"overlap={overlap}", "--progress", "none",
    ]  # fmt: skip
    run = run_measured((sys.executable, "-m SlicerMedFuse", arguments))
    if not run.ok:
        raise RuntimeError(f"segmenting {image} failed: {run.stderr_tail}")
    data = json.loads(report.read_text(encoding="utf-8"))
    measured = {"wall_s": round(run.wall_s, 2), "cpu_s": round(run.cpu_s, 1), "peak_rss_mib": run.peak_rss_mib}
    return {**measured, "peak_method": run.peak_method, "report": data}


def large_ct(ct_path: Path, folder: Path) -> Path:
    """The real CT resampled to 512 x 512 x 40 voxels over the same extent (linear)."""
    ct = sitk.ReadImage(str(ct_path))
    size = (512, 512, 40)
    spacing = [sz * sp / n for sz, sp, n in zip(ct.GetSize(), ct.GetSpacing(), size, strict=True)]
    origin = ct.TransformContinuousIndexToPhysicalPoint(
        [-0.5 + 0.5 * sp / old for sp, old in zip(spacing, ct.GetSpacing(), strict=True)]
    )
    large = sitk.Resample(
        ct, size, sitk.Transform(), sitk.sitkLinear, origin, spacing, ct.GetDirection(), -1024.0, sitk.sitkInt16
    )
    path = folder / "head_ct_512x512x40.nii.gz"
    sitk.WriteImage(large, str(path))
    return path


def _cell(value: float | None, scale: float = 100.0) -> str:
    return "-" if value is None else f"{scale * value:.1f}"


def compare(named: dict[str, Path], stem: Path) -> dict[str, Any]:
    """Side-by-side tables of several ``results.json``; writes ``stem.json`` and ``stem.md``."""
    results = {
        name: json.loads((folder / "results.json").read_text(encoding="utf-8")) for name, folder in named.items()
    }
    classes = list(next(iter(results.values()))["held_out"]["dice"])
    lines = [
        "| Model | " + " | ".join(classes) + " | Mean | FP rate | FP/case |",
        "|---|" + "---|" * (len(classes) + 3),
    ]
    for name, r in results.items():
        held = r["held_out"]
        dice = " | ".join(_cell(held["dice"][c]) for c in classes)
        lines.append(
            f"| {name} | {dice} | {_cell(held['mean_dice'])} | {held['fp_rate']['all']:.2f} | "
            f"{held['fp_per_case']:.2f} |"
        )
    counts = next(iter(results.values()))["held_out"]["cases_with_class"]
    lines.append("| cases with the class | " + " | ".join(str(counts[c]) for c in classes) + " | | | |")
    lines += ["", "False-positive volume on the real normal head CT (mL per class):", ""]
    lines += ["| Model | " + " | ".join(classes) + " | total |", "|---|" + "---|" * (len(classes) + 1)]
    for name, r in results.items():
        fp = r["normal_ct"]["false_positive_ml"]
        lines.append(f"| {name} | " + " | ".join(f"{fp[c]:.2f}" for c in classes) + f" | {sum(fp.values()):.2f} |")
    lines += ["", "Inference (one process per CT, wall time and peak RSS of that process):", ""]
    lines += ["| Model | CT | wall (s) | peak RSS (MiB) | network (s) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        for key, label in (("normal_ct", "real CT 256x256x108"), ("large_ct_512x512x40", "512x512x40")):
            if key in r:
                run = r[key]
                network = run["timings_s"].get("network")
                lines.append(f"| {name} | {label} | {run['wall_s']:.1f} | {peak_cell(run)} | {network:.1f} |")
        per_case = list(r["per_case"].values())
        wall = [c["wall_s"] for c in per_case]
        lines.append(
            f"| {name} | held-out cases (n={len(wall)}, median / max) | {sorted(wall)[len(wall) // 2]:.1f} / "
            f"{max(wall):.1f} | {peak_cell(max(per_case, key=lambda c: stored_peak_mib(c)[0] or 0))} (max) | |"
        )
    summary = {"models": results, "markdown": "\n".join(lines)}
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    stem.with_suffix(".md").write_text(summary["markdown"] + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", nargs="+", metavar="NAME=OUT_DIR", help="put finished results side by side")
    parser.add_argument("--report", type=Path, help="with --compare: stem of the .json and .md written")
    parser.add_argument("--model", type=Path, help="bundle folder")
    parser.add_argument("--data", type=Path, help="simulated dataset (imagesTs, labelsTs)")
    parser.add_argument("--output", type=Path, help="results folder")
    parser.add_argument("--ct", type=Path, default=DEFAULT_CT, help="real normal head CT (false positives, timing)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mirroring", action="store_true")
    parser.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap (the task's default 0.5)")
    parser.add_argument("--large", action="store_true", help="also time a 512 x 512 x 40 version of the real CT")
    args = parser.parse_args(argv)
    if args.compare:
        if args.report is None:
            parser.error("--compare needs --report")
        named = dict(item.split("=", 1) for item in args.compare)
        print(compare({k: Path(v) for k, v in named.items()}, args.report)["markdown"])
        return 0
    if args.model is None or args.data is None or args.output is None:
        parser.error("--model, --data and --output are required")
    load_start = os.getloadavg()
    dataset = read_nnunet_dataset(args.data)
    pred = args.output / "pred"
    pred.mkdir(parents=True, exist_ok=True)
    runs = {}
    for case in dataset.test:
        runs[case.case_id] = run_case(
            case.images[0], pred / f"{case.case_id}.nii.gz", args.model, args.threads, args.mirroring, args.overlap
        )
        print(
            f"{case.case_id}: {runs[case.case_id]['wall_s']} s, {runs[case.case_id]['peak_rss_mib']} MiB",
            file=sys.stderr,
        )
    scores = evaluate_folders(pred, args.data / "labelsTs")
    results: dict[str, Any] = {
        "model": str(args.model),
        "mirroring": args.mirroring,
        "overlap": args.overlap,
        "threads": args.threads,
        "load_average_1min": {"start": round(load_start[0], 2)},
        "held_out": scores.to_dict(),
        "held_out_table": format_table(scores, args.model.name),
        "per_case": {k: {key: v[key] for key in MEASURED} for k, v in runs.items()},
    }
    normal = run_case(
        args.ct, args.output / "normal_ct_labels.nii.gz", args.model, args.threads, args.mirroring, args.overlap
    )
    results["normal_ct"] = {
        **{key: normal[key] for key in MEASURED},
        "false_positive_ml": {k: v["volume_ml"] for k, v in normal["report"]["classes"].items()},
        "timings_s": normal["report"]["timings_s"],
    }
    if args.large:
        with tempfile.TemporaryDirectory() as folder:
            big = run_case(
                large_ct(args.ct, Path(folder)),
                args.output / "large_ct_labels.nii.gz",
                args.model,
                args.threads,
                args.mirroring,
                args.overlap,
            )
        results["large_ct_512x512x40"] = {
            **{key: big[key] for key in MEASURED},
            "timings_s": big["report"]["timings_s"],
        }
    results["load_average_1min"]["end"] = round(os.getloadavg()[0], 2)
    (args.output / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(results["held_out_table"])
    print(
        json.dumps({k: v for k, v in results.items() if k not in ("held_out", "held_out_table", "per_case")}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

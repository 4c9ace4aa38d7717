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
sys.path[:0] = [str(HERE.parent), str(HERE)]  # benchmarks/ (the shared harness) and its hemorrhage scripts

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
    from SlicerMedFuse.hemorrhage.evaluation import evaluate_folders

    bleed = {case["case"]: case["bleed"] for case in test_cases(data)}
    result = evaluate_folders(pred_dir, data / "labelsTs")  # a bleed-free case adds no Dice, only false positives
    free_fp = [case.fp_volume_ml for case in result.cases if not bleed[case.case_id]]
    totals = [sum(fp.values()) for fp in free_fp]
    return {
        "dice": result.dice,
        "cases_with_class": result.cases_with_class,
        "mean_dice": result.mean_dice,
        "bleed_cases": sum(bleed.values()),
        "free_cases": len(free_fp),
        "fp_ml_mean": {name: (statistics.fmean(fp[name] for fp in free_fp) if free_fp else None) for name in CLASSES},
        "fp_ml_total": {
            "median": statistics.median(totals) if totals else None,
            "mean": statistics.fmean(totals) if totals else None,
            "max": max(totals) if totals else None,
        },
        "per_case": {
            case.case_id: {"dice": case.dice, "fp_ml": case.fp_volume_ml, "bleed": bleed[case.case_id]}
            for case in result.cases
        },
    }


# --- driver ----------------------------------------------------------------------------------------


def _named(pairs: list[str], what: str) -> dict[str, Path]:
    named = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--{what} takes NAME=PATH; got '{pair}'")
        named[name] = Path(path)
    return named


def run_predictions(work: Path, models: dict[str, Path], datasets: dict[str, Path], threads: int) -> dict[str, Any]:
    """Every model on every dataset, one measured child each (reused when its record exists)."""
    from harness import run_measured

    runs: dict[str, Any] = {}
    for model_name, model in models.items():
        for data_name, data in datasets.items():
            folder = work / "pred" / model_name / data_name
            record = folder / "run.json"
            if not record.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                argv = ["predict", "--model", str(model), "--data", str(data), "--output", str(folder)]
                measurement = run_measured(
                    (sys.executable, Path(__file__).resolve(), [*argv, "--threads", str(threads)]),
                    log=folder / "child.log",
                )
                if not measurement.ok:
                    raise SystemExit(f"{model_name} on {data_name} failed; see {folder / 'child.log'}")
                run = measurement.to_dict()
                run["timings"] = json.loads((folder / "timings.json").read_text(encoding="utf-8"))
                record.write_text(json.dumps(run, indent=1), encoding="utf-8")
            runs[f"{model_name}/{data_name}"] = json.loads(record.read_text(encoding="utf-8"))
    return runs


def run_blast(work: Path, bench_python: Path, weights: Path, datasets: dict[str, Path], chosen: list[str]) -> dict:
    """BLAST-CT (first member) on the chosen ``DATASET:CASE`` items, one measured child each."""
    from harness import run_measured
    from run_peers import blast_worker

    results: dict[str, Any] = {}
    for item in chosen:
        data_name, _, case_id = item.partition(":")
        case = next(c for c in test_cases(datasets[data_name]) if c["case"] == case_id)
        folder = work / "blast" / data_name
        folder.mkdir(parents=True, exist_ok=True)
        record = folder / f"{case_id}.run.json"
        if not record.is_file():
            report = folder / f"{case_id}.report.json"
            argv = blast_worker(Path(case["image"]), folder / f"{case_id}.nii.gz", weights, 1, 1, report)
            measurement = run_measured((bench_python, HERE / "run_peers.py", argv), log=folder / f"{case_id}.log")
            if not measurement.ok:
                raise SystemExit(f"BLAST-CT on {item} failed; see {folder / f'{case_id}.log'}")
            run = measurement.to_dict()
            run["volumes_ml"] = json.loads(report.read_text(encoding="utf-8"))["volumes_ml"]  # per BLAST-CT class
            record.write_text(json.dumps(run, indent=1), encoding="utf-8")
        results[item] = {"bleed": case["bleed"], **json.loads(record.read_text(encoding="utf-8"))}
    return results


def run_large(work: Path, models: dict[str, Path], threads: int) -> dict[str, Any]:
    """Each model on the real CT resampled to 512 x 512 x 40 through ``medfuse run hemorrhage`` (a measured child)."""
    from evaluate_model import large_ct
    from harness import run_measured

    folder = work / "large"
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "head_ct_512x512x40.nii.gz"
    if not image.is_file():
        large_ct(DEFAULT_CT, folder)
    results = {}
    for name, model in models.items():
        record = folder / f"{name}.run.json"
        if not record.is_file():
            argv = ["run", "hemorrhage", "--input", f"ct={image}", "--output", str(folder / f"{name}.nii.gz")]
            argv += ["--model", str(model), "--threads", str(threads), "--device", "cpu", "--progress", "none"]
            argv += ["--report", str(folder / f"{name}.report.json")]
            measurement = run_measured((sys.executable, "-m SlicerMedFuse", argv), log=folder / f"{name}.log")
            if not measurement.ok:
                raise SystemExit(f"{name} on the 512 x 512 x 40 CT failed; see {folder / f'{name}.log'}")
            run = {**measurement.to_dict(), "threads": threads}
            run["timings_s"] = json.loads((folder / f"{name}.report.json").read_text(encoding="utf-8")).get("timings_s")
            record.write_text(json.dumps(run, indent=1), encoding="utf-8")
        results[name] = json.loads(record.read_text(encoding="utf-8"))
    return results


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _ml(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(summary: dict[str, Any]) -> str:
    """The tables: Dice (BHSD Table 1 layout) and false positives per model and dataset, sweep, BLAST-CT, cost."""
    lines = ["# Hemorrhage generalisation (issue 15)", ""]
    for data_name, description in summary["datasets"].items():
        lines += [f"## {data_name}: {description}", ""]
        lines += ["| Model | " + " | ".join(CLASSES) + " | Mean Dice | FP mL median / mean / max (bleed-free) |"]
        lines += ["|---|" + "---|" * (len(CLASSES) + 2)]
        counts = None
        for model_name in summary["models"]:
            s = summary["scores"].get(f"{model_name}/{data_name}")
            if s is None:
                continue
            counts = s["cases_with_class"]
            fp = s["fp_ml_total"]
            dice = " | ".join(_pct(s["dice"][c]) for c in CLASSES)
            lines.append(
                f"| {model_name} | {dice} | {_pct(s['mean_dice'])} | "
                f"{_ml(fp['median'])} / {_ml(fp['mean'])} / {_ml(fp['max'])} (n={s['free_cases']}) |"
            )
        if counts:
            lines.append("| bleed cases with the class | " + " | ".join(str(counts[c]) for c in CLASSES) + " | | |")
        lines += ["", "False-positive mL per class, mean over the bleed-free cases:", ""]
        lines += ["| Model | " + " | ".join(CLASSES) + " |", "|---|" + "---|" * len(CLASSES)]
        for model_name in summary["models"]:
            s = summary["scores"].get(f"{model_name}/{data_name}")
            if s is not None and s["free_cases"]:
                lines.append(f"| {model_name} | " + " | ".join(_ml(s["fp_ml_mean"][c]) for c in CLASSES) + " |")
        lines.append("")
    if "sweep" in summary["datasets"]:
        lines += ["## The real normal CT at each thickness and tilt: false-positive mL (all classes)", ""]
        cases = [c["case"] for c in summary["sweep_cases"]]
        lines += ["| Model | " + " | ".join(cases) + " |", "|---|" + "---|" * len(cases)]
        for model_name in summary["models"]:
            s = summary["scores"].get(f"{model_name}/sweep")
            if s is not None:
                cells = [_ml(sum(s["per_case"][c]["fp_ml"].values())) for c in cases]
                lines.append(f"| {model_name} | " + " | ".join(cells) + " |")
        lines.append("")
    if summary.get("blast"):
        lines += ["## BLAST-CT (one member, real-scan weights) on the same cases", ""]
        lines += ["| case | bleed | BLAST-CT IPH / EAH / IVH mL (oedema) | "]
        lines[-1] += " | ".join(f"{m} bleed mL" for m in summary["models"]) + " | BLAST-CT wall s / peak MiB |"
        lines += ["|---|---|---|" + "---|" * len(summary["models"]) + "---|"]
        for item, run in summary["blast"].items():
            data_name, _, case_id = item.partition(":")
            v = run["volumes_ml"]
            ours = []
            for model_name in summary["models"]:
                s = summary["scores"].get(f"{model_name}/{data_name}")
                ours.append(_ml(sum(s["per_case"][case_id]["fp_ml"].values())) if s and not run["bleed"] else "-")
            lines.append(
                f"| {item} | {'yes' if run['bleed'] else 'no'} | {v['IPH']:.2f} / {v['EAH']:.2f} / {v['IVH']:.2f} "
                f"({v['oedema']:.2f}) | " + " | ".join(ours) + f" | {run['wall_s']:.0f} / {run['peak_rss_mib']:.0f} |"
            )
        lines.append("")
    if summary.get("large"):
        lines += ["## One CT of 512 x 512 x 40 through `medfuse run hemorrhage` (a measured child process)", ""]
        lines += ["| model | threads | wall s | CPU s | peak MiB | network s |", "|---|---|---|---|---|---|"]
        for name, run in summary["large"].items():
            network = (run.get("timings_s") or {}).get("network")
            lines.append(
                f"| {name} | {run['threads']} | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | {run['peak_rss_mib']:.0f} | "
                f"{'-' if network is None else f'{network:.1f}'} |"
            )
        lines.append("")
    lines += ["## Cost (one child process per model and dataset, model loaded once)", ""]
    lines += ["| run | cases | s per case median / max | child wall s | child CPU s | child peak MiB |"]
    lines += ["|---|---|---|---|---|---|"]
    for key, run in summary["runs"].items():
        per_case = list(run["timings"]["seconds_per_case"].values())
        lines.append(
            f"| {key} | {len(per_case)} | {statistics.median(per_case):.1f} / {max(per_case):.1f} | "
            f"{run['wall_s']:.0f} | {run['cpu_s']:.0f} | {run['peak_rss_mib']:.0f} |"
        )
    return "\n".join(lines) + "\n"


DESCRIPTIONS = {
    "scanners": "held-out simulated scanners (5-7.5 mm slices and 18-25 degree tilt, half with an unseen very sharp "
    "kernel; anatomy varied; seeds 35000-35059)",
    "own": "0.5.1's own held-out set (the source CT's acquisition, seeds 5000-5029)",
    "sweep": "the real normal CT (the simulator's source, not independent) at 1.5-7.5 mm, tilt 0 and 18.5 degrees",
}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sweep = commands.add_parser("sweep", help="write the real normal CT's thickness x tilt sweep")
    sweep.add_argument("output", type=Path)
    sweep.add_argument("--ct", type=Path, default=DEFAULT_CT)
    child = commands.add_parser("predict", help="(child) one model on one dataset")
    child.add_argument("--model", required=True, type=Path)
    child.add_argument("--data", required=True, type=Path)
    child.add_argument("--output", required=True, type=Path)
    child.add_argument("--threads", type=int, default=1)
    run = commands.add_parser("run", help="every model on every dataset, BLAST-CT on a subset, the tables")
    run.add_argument("--work", required=True, type=Path)
    run.add_argument("--model", action="append", default=[], help="NAME=BUNDLE_DIR (first: the new model)")
    run.add_argument("--data", action="append", default=[], help="NAME=DATASET_DIR (scanners, own, sweep)")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--bench-python", type=Path, help="python of the benchmark venv with blast-ct")
    run.add_argument("--blast-weights", type=Path, default=DEFAULT_BLAST)
    run.add_argument("--blast-cases", default="", help="DATASET:CASE,... for BLAST-CT")
    run.add_argument("--report", type=Path, help="results stem (writes .json and .md)")
    run.add_argument(
        "--large-threads", type=int, default=0, help="also time a 512 x 512 x 40 CT with this many threads"
    )
    args = parser.parse_args(argv)
    if args.command == "sweep":
        print(write_sweep(args.output, args.ct))
        return 0
    if args.command == "predict":
        predict(args.model, args.data, args.output, args.threads)
        return 0
    models, datasets = _named(args.model, "model"), _named(args.data, "data")
    runs = run_predictions(args.work, models, datasets, args.threads)
    scores = {key: score(args.work / "pred" / key, datasets[key.split("/")[1]]) for key in runs}
    chosen = [c for c in args.blast_cases.split(",") if c]
    blast = run_blast(args.work, args.bench_python, args.blast_weights, datasets, chosen) if chosen else {}
    large = run_large(args.work, models, args.large_threads) if args.large_threads else {}
    summary = {
        "models": {name: str(path) for name, path in models.items()},
        "datasets": {name: DESCRIPTIONS.get(name, str(path)) for name, path in datasets.items()},
        "sweep_cases": test_cases(datasets["sweep"]) if "sweep" in datasets else [],
        "scores": scores,
        "runs": runs,
        "blast": blast,
        "large": large,
    }
    text = markdown(summary)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.with_suffix(".json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        args.report.with_suffix(".md").write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

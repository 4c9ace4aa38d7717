"""Breast benchmark, step 2: held-out scores, missing-T2W degradation, timing, demo bundle, results files.

    python benchmarks/breast/run_benchmark.py evaluate --out /work/scratch/breast
    cpuslot cpuslot python benchmarks/breast/run_benchmark.py timing --out /work/scratch/breast
    python benchmarks/breast/run_benchmark.py report --out /work/scratch/breast

``evaluate`` scores every bundle trained by ``train_models.py`` on the held-out phantoms (full
inference path: study preparation, slice-wise network, threshold), and the fusion networks again
without T2W (presence mask). ``timing`` renders a 512 x 512 x 120 three-sequence phantom study
(T1C, T2W, pre-contrast at the real crop's 0.664 x 0.664 x 2.1 mm) and runs ``medfuse run
breast-mass`` on it as a separate process with ``--threads`` threads (2 needs both CPU slots), for the demo
bundle; wall time, CPU time and peak RSS (MiB) of that process come from ``benchmarks/harness.py`` (peak:
VmHWM read in the process itself). ``report`` writes ``benchmarks/results/breast.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import peak_cell, run_measured  # noqa: E402

ARCHITECTURES = ("unet", "fuseunet", "fuseunet-sa", "proposed")
RESULTS = Path(__file__).resolve().parents[1] / "results"


def _bundle(out: Path, architecture: str) -> Path:
    folders = sorted((out / "models" / architecture).glob("medfuse-breast-mass-*"))
    if not folders:
        raise SystemExit(f"no trained bundle for {architecture} under {out / 'models'}; run train_models.py first")
    return folders[-1]


def evaluate(out: Path, architectures: tuple[str, ...] = ARCHITECTURES) -> None:
    import torch

    from SlicerMedFuse.breast.dataset_evaluation import evaluate_bundle_on_dataset
    from SlicerMedFuse.device import resolve_device
    from SlicerMedFuse.specs import task_spec

    torch.set_num_threads(1)
    spec = task_spec("breast-mass")
    device = resolve_device("cpu", threads=1)
    target = out / "evaluation.json"
    results = json.loads(target.read_text()) if target.is_file() else {}
    for architecture in architectures:
        bundle = _bundle(out, architecture)
        log = json.loads((bundle.parent / "training_log.json").read_text())
        entry = {"bundle": bundle.name, "training_seconds": log["seconds"], "final_loss": log["history"][-1]["loss"]}
        started = time.perf_counter()
        entry["all_sequences"] = evaluate_bundle_on_dataset(
            bundle, out / "data", task_spec=spec, device=device
        ).to_dict()
        if architecture != "unet":
            entry["without_t2w"] = evaluate_bundle_on_dataset(
                bundle, out / "data", task_spec=spec, device=device, drop=("t2w",)
            ).to_dict()
        entry["evaluation_seconds"] = round(time.perf_counter() - started, 1)
        results[architecture] = entry
        print(architecture, entry["all_sequences"]["dice"], entry.get("without_t2w", {}).get("dice"), flush=True)
        target.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _run_child(arguments: list[str], log: Path, threads: int) -> dict:
    """Run ``medfuse`` with ``arguments`` in a measured child process; its wall and CPU time (s) and peak RSS (MiB)."""
    env = dict(os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    run = run_measured((sys.executable, "-m SlicerMedFuse", arguments), env=env, log=log)
    if not run.ok:
        raise SystemExit(f"medfuse {' '.join(arguments)} failed; see {log}")
    return {
        "wall_s": round(run.wall_s, 1),
        "cpu_s": round(run.cpu_s, 1),
        "peak_rss_mib": run.peak_rss_mib,
        "peak_method": run.peak_method,
    }


def _command(study: Path, name: str, bundle: Path, threads: int) -> list[str]:
    command = ["run", "breast-mass"]
    command += [f"--input={role}={study / f'{role}.nii.gz'}" for role in ("t1c", "t2w", "pre")]
    command += [f"--output=mass={study / f'mass_{name}.nii.gz'}", "--model", str(bundle), "--threads", str(threads)]
    return command + ["--device", "cpu", "--report", str(study / f"report_{name}.json"), "--progress", "none"]


def render_study(out: Path) -> Path:
    """The 512 x 512 x 120 three-sequence phantom study (T1C, T2W, pre) as NIfTI files, rendered once."""
    from SlicerMedFuse.breast.phantom import generate_phantom, study_geometry
    from SlicerMedFuse.io import write_image

    study = out / "study512"
    study.mkdir(parents=True, exist_ok=True)
    if not (study / "t1c.nii.gz").is_file():
        started = time.perf_counter()
        phantom = generate_phantom(7, study_geometry(512, 120))
        for name, image in phantom.images.items():
            write_image(image, study / f"{name}.nii.gz")
        write_image(phantom.mass, study / "mass_truth.nii.gz")
        print(f"study rendered in {time.perf_counter() - started:.0f} s", flush=True)
    return study


def timing(out: Path, threads: int = 2) -> None:
    """The demo bundle on the whole 512 x 512 x 120 three-sequence study, as ``medfuse run`` with ``threads``."""
    study = render_study(out)
    results = {
        "threads": threads,
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.machine(),
    }
    name, bundle = "demo", next((out / "demo").glob("*/manifest.json")).parent
    results[name] = {
        **_run_child(_command(study, name, bundle, threads), study / f"log_{name}.txt", threads),
        "bundle": bundle.name,
    }
    report = json.loads((study / f"report_{name}.json").read_text())
    results[name]["report_timings_s"] = report["timings_s"]
    results[name]["size"] = report["inputs"]["t1c"]["size"]
    print(name, results[name], flush=True)
    results["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    (out / "timing.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def demo(out: Path) -> None:
    """The proposed network trained on phantoms, re-saved as the demo bundle id (weights stay in scratch)."""
    from SlicerMedFuse.models.bundle import load_bundle, save_bundle

    loaded = load_bundle(_bundle(out, "proposed"))
    manifest = loaded.manifest.to_dict()
    manifest.update(id="medfuse-breast-mass-demo", title="Breast mass demo (proposed master/assistant network) — "
                    "trained on simulated phantom breast MRI, not on patient data")  # fmt: skip
    for key in ("weights", "created"):
        manifest.pop(key, None)
    print(save_bundle(loaded.network, manifest, out / "demo", overwrite=True))


TITLES = {"unet": "U-Net (T1C only)", "fuseunet": "FuseUNet", "fuseunet-sa": "FuseUNet + SA", "proposed": "Proposed"}
PAPER_DICE = {"unet": 73.3, "fuseunet": 74.9, "fuseunet-sa": 76.3, "proposed": 77.6}


def _parameters(bundle: Path) -> int:
    from SlicerMedFuse.models.bundle import load_manifest
    from SlicerMedFuse.nets.registry import build_network

    manifest = load_manifest(bundle)
    network = build_network(manifest.architecture, manifest.architecture_args)
    return sum(p.numel() for p in network.parameters())


NOTES = """\
## What this is, and what it is not

- **Simulated data.** Every number comes from phantom studies (`SlicerMedFuse.breast.phantom`), not
  patients: {train} training and {test} held-out studies of {grid}, masses {mass_mm} mm, 2-4
  enhancing non-lesion foci per study that are as bright as masses in T1C and fluid-bright in T2W.
  By construction T1C alone cannot tell foci from masses; the ordering test is whether the fusion
  networks use T2W for that.
- **Reduced networks and schedule (CPU budget), the same for all four:** widths 1/8 of the paper's
  (parameter counts in the table), slices {size}x{size} instead of 256x256, {steps} steps of batch 4
  ({epochs} epochs x {iterations}), AdamW without weight decay at lr 1e-3 with polynomial decay
  (paper: Adam/AMSGrad, lr 1e-4 halved every 30 epochs, epochs not stated), T2W dropped in 20 % of
  the fusion networks' training slices (modality dropout; the paper has none), one run per network
  (the paper: 3 runs x 5 folds). Run-to-run spread was not measured, so differences of about one
  Dice point are not evidence of an ordering.
- **Metrics per 3D study** (the paper scores 2D central slices): Dice, sensitivity, relative
  area (volume) difference in %, HD95 in mm (MONAI definition, SimpleITK distances).
- **Missing T2W** is run through the presence mask (the T2W stream is zeroed).
- **Timing** ran with {threads} thread(s) in one CPU slot (both slots of the shared machine could not
  be held at once), so it bounds the 2-core time from above. It is the whole `medfuse run breast-mass`
  process (reading three 512x512x120 float32
  NIfTI files, alignment checks, normalisation, network, writing) with the demo bundle
  (the proposed network at 1/8 width, 96x96 slices; it does not use the pre-contrast channel,
  which is still read, aligned and checked). The Table-1-sized network was not timed end to end:
  one in-process measurement of a three-sequence Table-1-width proposed network gave 12.2 s per
  256x256 slice on 1 thread under load average ~10, so 120 slices would not meet 90 s on 2 cores.
- Machine: 2 cores shared with other jobs (load averages in breast.json); training epoch times
  varied from 14 to 61 s for the same work.
"""


def _per_study_dice(entry: dict) -> dict[str, float]:
    return {case["case_id"]: case["dice"] for case in entry["per_case"] if case["dice"] is not None}


def _reading(evaluation: dict, done: list[str]) -> list[str]:
    """Sentences that put the measured differences in proportion (paired per study)."""
    lines = []
    if {"proposed", "fuseunet-sa"} <= set(done):
        a = _per_study_dice(evaluation["proposed"]["all_sequences"])
        b = _per_study_dice(evaluation["fuseunet-sa"]["all_sequences"])
        differences = [a[k] - b[k] for k in a if k in b]
        better = sum(d > 0 for d in differences)
        lines += [
            "",
            f"Proposed minus FuseUNet + SA, paired per study: mean {sum(differences) / len(differences):+.1f} Dice points, "
            f"proposed better in {better} of {len(differences)} studies. With one training run per network, the order "
            "among the three fusion networks rests on gaps of a few Dice points; only the gap to the T1C-only U-Net is "
            "unambiguous.",
        ]
    missing = [a for a in done if a != "unet"]
    if missing and "unet" in done:
        dice = [evaluation[a]["without_t2w"]["dice"]["mean"] for a in missing]
        sensitivity = [evaluation[a]["without_t2w"]["sensitivity"]["mean"] for a in missing]
        lines += [
            "",
            f"Without T2W the fusion networks fall to {min(dice):.1f}-{max(dice):.1f} Dice, about the T1C-only U-Net "
            f"({evaluation['unet']['all_sequences']['dice']['mean']:.1f}): masses are still found (sensitivity "
            f"{min(sensitivity):.0f}-{max(sensitivity):.0f} %), but the enhancing foci that only T2W tells apart become "
            "false positives (large area difference and HD95). The degradation is to the single-sequence level, "
            "not below it; in this phantom T2W is what separates masses from foci by design.",
        ]
    return lines


def report(out: Path) -> None:
    """Assemble ``benchmarks/results/breast.{json,md}`` from the evaluation and timing files."""
    from SlicerMedFuse.breast.evaluation import format_table

    sys.path.insert(0, str(Path(__file__).parent))
    from train_models import FOV_MM, PHANTOM, SCHEDULE, SIZE_XY, SLICES, SPACING_Z_MM, TEST_STUDIES, TRAINING_STUDIES

    evaluation = json.loads((out / "evaluation.json").read_text())
    timing = json.loads((out / "timing.json").read_text()) if (out / "timing.json").is_file() else None
    done = [a for a in ARCHITECTURES if a in evaluation]
    for architecture in done:
        evaluation[architecture]["parameters"] = _parameters(_bundle(out, architecture))
    dice = {a: evaluation[a]["all_sequences"]["dice"]["mean"] for a in done}
    order = sorted(done, key=lambda a: dice[a], reverse=True)
    paper_order = [a for a in ("proposed", "fuseunet-sa", "fuseunet", "unet") if a in done]
    trainer = SCHEDULE["trainer"]
    grid = f"{SIZE_XY}x{SIZE_XY}x{SLICES} voxels over {FOV_MM:g} mm, {SPACING_Z_MM:g} mm slices"
    data = {
        "data": {
            "training_studies": TRAINING_STUDIES,
            "test_studies": TEST_STUDIES,
            "grid": grid,
            "mass_diameter_mm": list(PHANTOM.mass_diameter_mm),
            "simulated": True,
        },
        "schedule": {k: (str(v) if k == "trainer" else v) for k, v in SCHEDULE.items()},
        "models": evaluation,
        "dice_order": order,
        "paper_order_reproduced": order == paper_order and len(done) == len(ARCHITECTURES),
        "timing": timing,
    }
    rows = [
        (
            f"{TITLES[a]}, {evaluation[a]['parameters'] / 1e6:.2f} M (paper Dice {PAPER_DICE[a]})",
            evaluation[a]["all_sequences"],
        )
        for a in done
    ]
    rows += [(f"{TITLES[a]}, T2W missing", evaluation[a]["without_t2w"]) for a in done if a != "unet"]
    verdict = "reproduced" if data["paper_order_reproduced"] else "NOT reproduced"
    lines = [
        "# Breast mass benchmark (phantoms)",
        "",
        "Generated by `benchmarks/breast/run_benchmark.py report` from measured files; details in breast.json.",
        "",
        f"Held-out phantom studies (n = {TEST_STUDIES}), mean ± SD over studies:",
        "",
        format_table(rows),
        "",
        f"Dice order measured: {' > '.join(f'{TITLES[a]} ({dice[a]:.1f})' for a in order)}. "
        f"Paper: {' > '.join(TITLES[a] for a in paper_order)}: {verdict}.",
        *_reading(evaluation, done),
        "",
        "Training (one process, 1 thread): "
        + "; ".join(
            f"{TITLES[a]} {evaluation[a]['training_seconds'] / 60:.1f} min, final loss {evaluation[a]['final_loss']:.3f}"
            for a in done
        )
        + ".",
    ]
    if timing is not None:
        t = timing["demo"]
        size = "x".join(str(v) for v in t["size"])
        lines += [
            "",
            f"| Inference, `medfuse run`, T1C + T2W + pre, {timing['threads']} thread(s) | size | wall (s) | CPU (s) | peak RSS (MiB) | bar |",
            "|---|---|---|---|---|---|",
            f"| demo bundle ({t['bundle']}) | {size} | {t['wall_s']} | {t['cpu_s']} | {peak_cell(t)} | <= 90 s, <= 4 GB |",
        ]
        study = out / "study512"
        if (study / "mass_demo.nii.gz").is_file():
            from SlicerMedFuse.breast.evaluation import score_case
            from SlicerMedFuse.io import read_image

            score = score_case(read_image(study / "mass_demo.nii.gz"), read_image(study / "mass_truth.nii.gz"))
            timing["demo"]["scores"] = dataclasses.asdict(score)
            lines += [
                "",
                f"On that study (phantom seed 7, masses 6-30 mm, 0.664 x 0.664 x 2.1 mm) the demo bundle scored Dice "
                f"{score.dice:.1f} %, sensitivity {score.sensitivity:.1f} %, relative area difference "
                f"{score.relative_area_difference:.1f} %, HD95 {score.hd95_mm:.1f} mm.",
            ]
    notes = NOTES.format(
        train=TRAINING_STUDIES,
        test=TEST_STUDIES,
        grid=grid,
        mass_mm=f"{PHANTOM.mass_diameter_mm[0]:g}-{PHANTOM.mass_diameter_mm[1]:g}",
        size=SIZE_XY,
        steps=trainer.epochs * trainer.iterations_per_epoch,
        epochs=trainer.epochs,
        iterations=trainer.iterations_per_epoch,
        threads=timing["threads"] if timing else "-",
    )
    lines += ["", notes]
    (RESULTS / "breast.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (RESULTS / "breast.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("evaluate", "demo", "study", "timing", "report"))
    parser.add_argument("--out", type=Path, default=Path("/work/scratch/breast"))
    parser.add_argument("--threads", type=int, default=2, help="timing: torch threads (2 needs both CPU slots)")
    parser.add_argument("--architectures", nargs="+", choices=ARCHITECTURES, default=ARCHITECTURES)
    args = parser.parse_args(argv)
    if args.step == "evaluate":
        evaluate(args.out, tuple(args.architectures))
        return 0
    if args.step == "timing":
        timing(args.out, args.threads)
        return 0
    steps = {"evaluate": evaluate, "demo": demo, "study": render_study, "timing": timing, "report": report}
    steps[args.step](args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

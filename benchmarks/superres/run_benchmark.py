"""SR4ZCT benchmark with the paper's protocol on real fine-slice volumes.

Thick slices are simulated with SR4ZCT's F-down along z (thickness r, overlap o, slices r - o
apart) from real fine volumes, restored onto the fine slices that lie between the first and last
thick slice, and scored with PSNR (data range of the truth volume) and SSIM on the central coronal
and sagittal slices, PSNR on the whole volume and PSNR inside a head mask (whole-volume numbers
are flattered by air). Every (case, method) runs in its own process (``benchmarks/harness.py``), which
reads, simulates, restores and writes the restored volume; wall and CPU time are the method's call
inside it, peak RSS (MiB) the process's own (VmHWM read in it), so they belong to that method alone.
The scores are computed afterwards by this driver, outside the measured process.

    python benchmarks/superres/run_benchmark.py                       # CT cases, fast SR4ZCT + baselines
    python benchmarks/superres/run_benchmark.py --cases ct:6.0/3.0 mni:5/2.5 --methods linear sr4zct-fast
    python benchmarks/superres/run_benchmark.py --cases ct:4.5/2.25 --methods sr4zct-faithful --iterations 8

Results: ``benchmarks/results/superres.json`` (every run appended by case/method key) and
``superres.md`` (the table). Data: ``../shared/data`` beside the repository (see its MANIFESTs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from harness import peak_cell, run_measured  # noqa: E402

DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
VOLUMES = {
    "ct": ("head_ct/invesalius_ct0051_head.nii.gz", "real head CT, 0.957 x 0.957 x 1.5 mm"),
    "colin": ("sr/colin27_ch2better_0.5mm.nii.gz", "Colin27 T1, 0.5 mm"),
    "mni": ("sr/mni_icbm152_2009a_t1_1mm.nii.gz", "MNI152 2009a T1 template, 1 mm"),
}
DEFAULT_CASES = ("ct:3.0/1.5", "ct:4.5/2.25", "ct:6.0/3.0", "colin:5.0/2.5", "colin:2.5/1.25", "mni:5.0/2.5")
METHODS = ("linear", "bspline", "sinc", "sr4zct-fast", "sr4zct-faithful")
DEFAULT_METHODS = ("linear", "bspline", "sinc", "sr4zct-fast")


def _parse_case(case: str) -> tuple[str, float, float]:
    volume, _, slab = case.partition(":")
    thickness, _, overlap = slab.partition("/")
    if volume not in VOLUMES or not thickness or not overlap:
        raise SystemExit(f"case must look like ct:4.5/2.25 with a volume in {sorted(VOLUMES)}; got {case!r}")
    return volume, float(thickness), float(overlap)


def _head_mask(truth: Any) -> Any:
    """The head without the surrounding air: voxels above 10 % of the truth's intensity range
    (CT: about -620 HU, above air and below fat; MRI: above background noise), closed with a
    radius-2 ball (bridges thin gaps in bone or CSF) and hole-filled (sinuses, ventricles)."""
    import numpy as np
    import SimpleITK as sitk

    threshold = float(truth.min() + 0.1 * (truth.max() - truth.min()))
    mask = sitk.GetImageFromArray((truth > threshold).astype(np.uint8))
    mask = sitk.BinaryMorphologicalClosing(mask, [2, 2, 2])
    mask = sitk.BinaryFillhole(mask)
    return sitk.GetArrayFromImage(mask).astype(bool)


def time_faithful(case: str, iterations: int, seed: int) -> dict[str, Any]:
    """Time ``iterations`` training steps of the faithful configuration and extrapolate to 200 epochs.

    Inference is the same network on the same fine grid in both configurations, so its time is
    taken from this case's ``sr4zct-fast`` run (when present) by :func:`_extrapolate`.
    """
    import dataclasses

    import numpy as np
    import SimpleITK as sitk
    import torch

    from SlicerMedFuse.superres.evaluation import simulate_thick_slices
    from SlicerMedFuse.superres.slice_geometry import detect_slice_geometry
    from SlicerMedFuse.superres.sr4zct import sr4zct_config, train_sr4zct

    volume, thickness, overlap = _parse_case(case)
    simulation = simulate_thick_slices(sitk.ReadImage(str(DATA / VOLUMES[volume][0])), thickness, overlap, axis=2)
    geometry = detect_slice_geometry(simulation.thick)
    array = torch.from_numpy(sitk.GetArrayFromImage(simulation.thick).astype(np.float32))
    normalised = (array - array.mean()) / array.std()
    faithful = sr4zct_config("faithful")
    # one epoch over iterations / 2 slices = exactly `iterations` whole-slice steps of batch 1
    probe = dataclasses.replace(faithful, epochs=1, slices_per_epoch=max(1, iterations // 2))
    spacing = simulation.thick.GetSpacing()
    started, cpu_started = time.perf_counter(), time.process_time()
    train_sr4zct(normalised, (spacing[1], spacing[0]), geometry.thickness, geometry.overlap, probe, seed=seed)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    steps = 2 * probe.slices_per_epoch
    per_epoch = 2 * normalised.shape[0]
    return {
        "case": case,
        "method": "sr4zct-faithful",
        "measured_iterations": steps,
        "slice_size": list(normalised.shape[1:]),
        "wall_s_per_iteration": round(wall / steps, 3),
        "cpu_s_per_iteration": round(cpu / steps, 3),
        "iterations_per_epoch": per_epoch,
        "epochs": faithful.epochs,
        "extrapolated_train_s": round(wall / steps * per_epoch * faithful.epochs, 0),
        "torch_threads": torch.get_num_threads(),
        "config": faithful.to_dict(),
    }


def restore_one(case: str, method: str, epochs: int, seed: int, folder: Path) -> dict[str, Any]:
    """Simulate and restore with one method (runs inside the measured worker process).

    Writes ``folder/truth.nii.gz`` and ``folder/restored.nii.gz`` for :func:`score_restored`.
    """
    import SimpleITK as sitk
    import torch

    from SlicerMedFuse.device import resolve_device
    from SlicerMedFuse.superres.evaluation import simulate_thick_slices
    from SlicerMedFuse.superres.interpolation import interpolate_slices
    from SlicerMedFuse.superres.slice_geometry import detect_slice_geometry
    from SlicerMedFuse.superres.sr4zct import sr4zct_config, sr4zct_upsample

    volume, thickness, overlap = _parse_case(case)
    image = sitk.ReadImage(str(DATA / VOLUMES[volume][0]))
    simulation = simulate_thick_slices(image, thickness, overlap, axis=2)
    started, cpu_started = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if method.startswith("sr4zct"):
        config = sr4zct_config(method.split("-", 1)[1], epochs)
        result = sr4zct_upsample(
            simulation.thick,
            simulation.truth,
            detect_slice_geometry(simulation.thick),
            config,
            device_config=resolve_device("auto"),
            seed=seed,
        )
        restored_image = result.image
        extra = result.report()
    else:
        restored_image = interpolate_slices(simulation.thick, simulation.truth, method)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    sitk.WriteImage(sitk.Cast(simulation.truth, sitk.sitkFloat32), str(folder / "truth.nii.gz"))
    sitk.WriteImage(sitk.Cast(restored_image, sitk.sitkFloat32), str(folder / "restored.nii.gz"))
    return {
        "case": case,
        "volume": VOLUMES[volume][1],
        "thickness_mm": thickness,
        "overlap_mm": overlap,
        "thick_size": list(simulation.thick.GetSize()),
        "truth_size": list(simulation.truth.GetSize()),
        "method": method,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "torch_threads": torch.get_num_threads(),
        "itk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        **({"sr4zct": extra} if extra else {}),
    }


def score_restored(run: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The worker's record with the scores of its restored volume against the truth (in this driver)."""
    import numpy as np
    import SimpleITK as sitk

    from SlicerMedFuse.superres.evaluation import score_volume

    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "truth.nii.gz"))).astype(np.float32)
    restored = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "restored.nii.gz"))).astype(np.float32)
    scores = score_volume(restored, truth, mask=_head_mask(truth))
    return {**run, **{name: round(value, 4) for name, value in scores.items()}}


def _case_key(case: str) -> tuple[int, float]:
    volume, thickness, _ = _parse_case(case)
    return list(VOLUMES).index(volume), thickness


def _paper_table(runs: list[dict[str, Any]]) -> list[str]:
    """The paper's layout: one row per case and view, one 'PSNR / SSIM' cell per method."""
    methods = [method for method in METHODS if any(run["method"] == method for run in runs)]
    lines = [
        "| case (r/o mm) | view | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for case in sorted({run["case"] for run in runs}, key=_case_key):
        by_method = {run["method"]: run for run in runs if run["case"] == case}
        for view in ("coronal", "sagittal"):
            cells = [
                f"{by_method[m][f'psnr_{view}']:.2f} / {by_method[m][f'ssim_{view}']:.4f}" if m in by_method else "-"
                for m in methods
            ]
            lines.append(f"| {case if view == 'coronal' else ''} | {view[:3]} | " + " | ".join(cells) + " |")
    return lines


def _markdown(stored: dict[str, Any]) -> str:
    runs = sorted(stored["runs"].values(), key=lambda r: (_case_key(r["case"]), METHODS.index(r["method"])))
    lines = [
        "# Super-resolution benchmark (SR4ZCT protocol)",
        "",
        "Generated by `benchmarks/superres/run_benchmark.py`; raw numbers, SR4ZCT configs and loss curves",
        "in `superres.json`. Thick slices simulated with SR4ZCT's F-down along z (9-point slab average,",
        "slices r - o apart) from real fine volumes; restored onto the fine slices between the first and",
        "last thick slice. MONAI PSNR over the truth volume's range and MONAI SSIM (Gaussian 11 / 1.5).",
        "Volumes: ct = " + VOLUMES["ct"][1] + "; colin = " + VOLUMES["colin"][1] + "; mni = " + VOLUMES["mni"][1] + ".",
        "",
        "## Central coronal / sagittal slices (PSNR dB / SSIM), as in the paper's table",
        "",
        *_paper_table(runs),
        "",
        "## All metrics, time and memory",
        "",
        "Whole volume: PSNR over all voxels, SSIM = mean over every coronal and sagittal reformat. Mask: the",
        "head (truth > 10 % of its range, closed with a radius-2 ball, holes filled), air excluded.",
        "One torch and one ITK thread per run, each run in its own process; wall times on a shared",
        "2-core machine (`load_average` in superres.json), CPU s is the process's own CPU time.",
        'Peak RSS: the run\'s whole process, VmHWM read in it (`benchmarks/harness.py`); "(legacy)": measured',
        "before that harness, by getrusage in the worker (which includes the driver's size at fork).",
        "",
        "| case | method | PSNR cor | PSNR sag | SSIM cor | SSIM sag | PSNR vol | SSIM vol | PSNR mask | SSIM mask "
        "| wall s | CPU s | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(
            f"| {run['case']} | {run['method']} | {run['psnr_coronal']:.2f} | {run['psnr_sagittal']:.2f} | "
            f"{run['ssim_coronal']:.4f} | {run['ssim_sagittal']:.4f} | {run['psnr_volume']:.2f} | "
            f"{run['ssim_volume']:.4f} | {run['psnr_mask']:.2f} | {run['ssim_mask']:.4f} | "
            f"{run['wall_s']} | {run['cpu_s']} | {peak_cell(run)} |"
        )
    faithful = stored.get("faithful_extrapolation", {})
    if faithful:
        lines += [
            "",
            "## Faithful configuration: EXTRAPOLATED from a few measured iterations (not run)",
            "",
            "Training time = s / iteration x iterations, one thread. CPU time is the process's own CPU seconds",
            "(contention on the shared machine inflates it too); wall time was measured under `load_average`.",
            "Inference (same network, same grid) is the fast run's, which is also the faithful configuration's.",
            "",
            "| case | slice px | measured iterations | CPU s / iteration | wall s / iteration "
            "| iterations (200 epochs x 2Z) | training h, CPU time | training h, wall | + inference s (fast run) "
            "| peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for case, entry in sorted(faithful.items(), key=lambda item: _case_key(item[0])):
            fast = stored["runs"].get(f"{case} sr4zct-fast", {})
            infer = fast.get("sr4zct", {}).get("timings_s", {}).get("infer", "-")
            iterations = entry["iterations_per_epoch"] * entry["epochs"]
            lines.append(
                f"| {case} | {'x'.join(map(str, entry['slice_size']))} | {entry['measured_iterations']} | "
                f"{entry['cpu_s_per_iteration']} | {entry['wall_s_per_iteration']} | {iterations} | "
                f"{entry['cpu_s_per_iteration'] * iterations / 3600:.1f} | {entry['wall_s_per_iteration'] * iterations / 3600:.1f} | "
                f"{infer} | {peak_cell(entry)} |"
            )
    thread_runs = stored.get("thread_runs", {})
    if thread_runs:
        lines += [
            "",
            "## Time with more threads (the CPU configuration's time bar: <= 10 min on 2 cores)",
            "",
            "Same worker, torch and ITK threads as given; `load` is the 1-min load average when it started.",
            "",
            "| case | method | threads | PSNR cor | PSNR sag | wall s | CPU s | peak RSS MiB | load |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for run in sorted(thread_runs.values(), key=lambda r: (_case_key(r["case"]), METHODS.index(r["method"]))):
            lines.append(
                f"| {run['case']} | {run['method']} | {run['torch_threads']} | {run['psnr_coronal']:.2f} | "
                f"{run['psnr_sagittal']:.2f} | {run['wall_s']} | {run['cpu_s']} | {peak_cell(run)} | "
                f"{run['load_average']} |"
            )
    return "\n".join(lines) + "\n"


def _worker(args: argparse.Namespace) -> int:
    import SimpleITK as sitk
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    case, method = args.worker
    if method == "sr4zct-faithful":
        run = time_faithful(case, args.iterations, args.seed)
    else:
        run = restore_one(case, method, args.epochs, args.seed, args.folder)
    (args.folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return 0


def measure(case: str, method: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """One (case, method) in its own measured process, scored here; None (and a message) when it failed."""
    with tempfile.TemporaryDirectory(prefix="medfuse-superres-") as scratch:
        arguments = ["--worker", case, method, "--folder", scratch, "--epochs", str(args.epochs)]
        arguments += ["--seed", str(args.seed), "--threads", str(args.threads), "--iterations", str(args.iterations)]
        measured = run_measured((sys.executable, Path(__file__).resolve(), arguments))
        if not measured.ok:
            print(f"{case} {method} failed:\n{measured.stderr_tail[-2000:]}", file=sys.stderr)
            return None
        run = json.loads((Path(scratch) / "run.json").read_text(encoding="utf-8"))
        if method != "sr4zct-faithful":
            run = score_restored(run, Path(scratch))
    run["peak_rss_mib"], run["peak_method"] = measured.peak_rss_mib, measured.peak_method
    run["load_average"] = measured.load_1min_before
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cases", nargs="+", default=list(DEFAULT_CASES), help="VOLUME:THICKNESS/OVERLAP, e.g. ct:4.5/2.25"
    )
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=0, help="SR4ZCT epochs (0: the configuration's default)")
    parser.add_argument("--iterations", type=int, default=8, help="sr4zct-faithful: training steps to time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and ITK threads per run (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)  # the worker's output folder
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "superres.json"
    stored = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {"runs": {}}
    for case in args.cases:
        _parse_case(case)
        for method in args.methods:
            run = measure(case, method, args)
            if run is None:
                continue
            if method == "sr4zct-faithful":
                stored.setdefault("faithful_extrapolation", {})[case] = run
                print(f"{case:12s} {method:16s} {run['wall_s_per_iteration']} s/iteration", flush=True)
            elif args.threads != 1:
                # Timing runs with more threads (the "<= 10 min on 2 cores" bar) keep their own
                # table, so the one-thread rows stay comparable with each other.
                stored.setdefault("thread_runs", {})[f"{case} {method} threads={args.threads}"] = run
            else:
                stored["runs"][f"{case} {method}"] = run
                print(
                    f"{case:12s} {method:16s} cor {run['psnr_coronal']:.2f} sag {run['psnr_sagittal']:.2f} "
                    f"vol {run['psnr_volume']:.2f} mask {run['psnr_mask']:.2f} wall {run['wall_s']}s "
                    f"cpu {run['cpu_s']}s rss {run['peak_rss_mib']} MiB",
                    flush=True,
                )
            stored["machine"] = {
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            }
            json_path.write_text(json.dumps(stored, indent=1) + "\n")
            (args.out / "superres.md").write_text(_markdown(stored))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

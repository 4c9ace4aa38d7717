"""SR4ZCT benchmark with the paper's protocol on real fine-slice volumes.

Thick slices are simulated with SR4ZCT's F-down along z (thickness r, overlap o, slices r - o
apart) from real fine volumes, restored onto the fine slices that lie between the first and last
thick slice, and scored with PSNR (data range of the truth volume) and SSIM on the central coronal
and sagittal slices, PSNR on the whole volume and PSNR inside a head mask (whole-volume numbers
are flattered by air). Every (case, method) runs in its own process so wall time, CPU time and
peak RSS (``resource.getrusage``) belong to that method alone.

    python benchmarks/superres/run_benchmark.py                       # CT cases, fast SR4ZCT + baselines
    python benchmarks/superres/run_benchmark.py --cases ct:6.0/3.0 mni:5/2.5 --methods linear sr4zct-fast

Results: ``benchmarks/results/superres.json`` (every run appended by case/method key) and
``superres.md`` (the table). Data: ``../shared/data`` beside the repository (see its MANIFESTs).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
VOLUMES = {
    "ct": ("head_ct/invesalius_ct0051_head.nii.gz", "real head CT, 0.957 x 0.957 x 1.5 mm"),
    "colin": ("sr/colin27_ch2better_0.5mm.nii.gz", "Colin27 T1, 0.5 mm"),
    "mni": ("sr/mni_icbm152_2009a_t1_1mm.nii.gz", "MNI152 2009a T1 template, 1 mm"),
}
DEFAULT_CASES = ("ct:3.0/1.5", "ct:4.5/2.25", "ct:6.0/3.0")
METHODS = ("linear", "bspline", "sinc", "sr4zct-fast", "sr4zct-faithful")
DEFAULT_METHODS = ("linear", "bspline", "sinc", "sr4zct-fast")


def _parse_case(case: str) -> tuple[str, float, float]:
    volume, _, slab = case.partition(":")
    thickness, _, overlap = slab.partition("/")
    if volume not in VOLUMES or not thickness or not overlap:
        raise SystemExit(f"case must look like ct:4.5/2.25 with a volume in {sorted(VOLUMES)}; got {case!r}")
    return volume, float(thickness), float(overlap)


def _head_mask(truth: Any) -> Any:
    """Voxels above 10 % of the intensity range, closed and hole-filled (the head, without air)."""
    import numpy as np
    import SimpleITK as sitk

    threshold = float(truth.min() + 0.1 * (truth.max() - truth.min()))
    mask = sitk.GetImageFromArray((truth > threshold).astype(np.uint8))
    mask = sitk.BinaryMorphologicalClosing(mask, [2, 2, 2])
    mask = sitk.BinaryFillhole(mask)
    return sitk.GetArrayFromImage(mask).astype(bool)


def run_one(case: str, method: str, epochs: int, seed: int) -> dict[str, Any]:
    """Simulate, restore with one method and score (runs inside the worker process)."""
    import numpy as np
    import SimpleITK as sitk
    import torch

    from SlicerMedFuse.device import resolve_device
    from SlicerMedFuse.superres.evaluation import score_volume, simulate_thick_slices
    from SlicerMedFuse.superres.interpolation import interpolate_slices
    from SlicerMedFuse.superres.slice_geometry import detect_slice_geometry
    from SlicerMedFuse.superres.sr4zct import sr4zct_config, sr4zct_upsample

    volume, thickness, overlap = _parse_case(case)
    image = sitk.ReadImage(str(DATA / VOLUMES[volume][0]))
    simulation = simulate_thick_slices(image, thickness, overlap, axis=2)
    truth = sitk.GetArrayFromImage(simulation.truth).astype(np.float32)
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
    restored = sitk.GetArrayFromImage(restored_image).astype(np.float32)
    scores = score_volume(restored, truth, mask=_head_mask(truth))
    return {
        "case": case,
        "volume": VOLUMES[volume][1],
        "thickness_mm": thickness,
        "overlap_mm": overlap,
        "thick_size": list(simulation.thick.GetSize()),
        "truth_size": list(simulation.truth.GetSize()),
        "method": method,
        **{name: round(value, 4) for name, value in scores.items()},
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        **({"sr4zct": extra} if extra else {}),
    }


def _markdown(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Super-resolution benchmark (SR4ZCT protocol)",
        "",
        "Thick slices simulated with SR4ZCT's F-down along z (9-point slab average, spacing r - o) from real",
        "fine volumes; restored onto the fine slices between the first and last thick slice. PSNR over the",
        "truth volume's range; central coronal / sagittal slices, whole volume, and inside a head mask.",
        "Wall and CPU times are per method in its own process; the machine was shared with other jobs, so",
        "wall times are upper bounds (see `load_average` in superres.json).",
        "",
        "| case | method | PSNR cor | PSNR sag | SSIM cor | SSIM sag | PSNR vol | PSNR mask | wall s | CPU s | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in sorted(results.values(), key=lambda r: (r["case"], METHODS.index(r["method"]))):
        lines.append(
            f"| {run['case']} | {run['method']} | {run['psnr_coronal']:.2f} | {run['psnr_sagittal']:.2f} | "
            f"{run['ssim_coronal']:.4f} | {run['ssim_sagittal']:.4f} | {run['psnr_volume']:.2f} | {run['psnr_mask']:.2f} | "
            f"{run['wall_s']} | {run['cpu_s']} | {run['peak_rss_mb']} |"
        )
    lines += ["", "SR4ZCT configurations: see `sr4zct.config` of each run in superres.json."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cases", nargs="+", default=list(DEFAULT_CASES), help="VOLUME:THICKNESS/OVERLAP, e.g. ct:4.5/2.25"
    )
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS)
    parser.add_argument("--epochs", type=int, default=0, help="SR4ZCT epochs (0: the configuration's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(*args.worker, args.epochs, args.seed)))
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "superres.json"
    stored = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {"runs": {}}
    for case in args.cases:
        _parse_case(case)
        for method in args.methods:
            command = [
                sys.executable,
                __file__,
                "--worker",
                case,
                method,
                "--epochs",
                str(args.epochs),
                "--seed",
                str(args.seed),
            ]
            if args.threads:
                command += ["--threads", str(args.threads)]
            load = os.getloadavg()[0]
            completed = subprocess.run(command, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                print(f"{case} {method} failed:\n{completed.stderr[-2000:]}", file=sys.stderr)
                continue
            run = json.loads(completed.stdout.strip().splitlines()[-1])
            run["load_average"] = round(load, 2)
            stored["runs"][f"{case} {method}"] = run
            print(
                f"{case:12s} {method:16s} cor {run['psnr_coronal']:.2f} sag {run['psnr_sagittal']:.2f} "
                f"vol {run['psnr_volume']:.2f} mask {run['psnr_mask']:.2f} wall {run['wall_s']}s cpu {run['cpu_s']}s "
                f"rss {run['peak_rss_mb']} MB",
                flush=True,
            )
            stored["machine"] = {
                "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
            }
            json_path.write_text(json.dumps(stored, indent=1) + "\n")
            (args.out / "superres.md").write_text(_markdown(stored["runs"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

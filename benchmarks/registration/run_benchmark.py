"""Registration benchmark (issue 3, section 3a): real anatomy, known smooth deformation, our method and the peers in one run.

The real T1 + aseg (``../shared/data/brain_registration/vxm_test_scan_*``, 160 x 192 x 224, 1 mm)
is warped by a random smooth diffeomorphism per seed (a stationary velocity field on a ~24 mm
control grid, integrated by scaling and squaring and scaled so the largest displacement is
``--max-displacement`` mm). Every method registers the warped image (moving) back to the original
(fixed); its displacement field (ITK convention, fixed -> moving, LPS mm) is then scored:

* Dice and HD95 (mm) over voxelmorph's standard 30 labels, moving aseg warped by nearest neighbour
  through the method's own field with SimpleITK (the same code for every method);
* % voxels with |J| <= 0 and std(log|J|) of the whole field;
* field error: mean |d - d_true| in mm over the brain (fixed aseg > 0), d_true = exp(-v);
* wall time of the registration call (imports and file I/O excluded) and the whole process,
  and the process's peak RSS, each method in its own process with 2 threads.

HD95 follows ``monai.metrics.compute_hausdorff_distance(percentile=95)`` (the larger of the two
directed 95th percentiles of boundary-to-boundary distances) but uses SimpleITK distance maps,
because scipy is not installed in the project venv. Writes ``benchmarks/results/registration_a.json``
and ``.md``.

Usage::

    python benchmarks/registration/run_benchmark.py --seeds 0 1 2 \\
        --methods medfuse-fast medfuse-accurate elastix-bspline ants-syn --peer-python /work/bench-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from SlicerMedFuse.geometry import ImageGeometry  # noqa: E402
from SlicerMedFuse.registration.regularizers import jacobian_stats  # noqa: E402
from SlicerMedFuse.registration.transforms import (  # noqa: E402
    displacement_field_image,
    displacement_to_physical,
    integrate_velocity,
    physical_to_displacement,
    warp,
    warp_labels,
)

DATA = REPO.parent / "shared" / "data" / "brain_registration"
LABELS = [
    2,
    3,
    4,
    7,
    8,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    24,
    28,
    31,
    41,
    42,
    43,
    46,
    47,
    49,
    50,
    51,
    52,
    53,
    54,
    60,
    63,
]
PEERS = ("ants-syn", "elastix-bspline")


def random_velocity(
    shape: tuple[int, ...], seed: int, max_displacement_voxels: float, control_spacing: int = 24
) -> torch.Tensor:
    """A smooth random velocity (1, 3, D, H, W) whose exponential moves at most ``max_displacement_voxels``."""
    generator = torch.Generator().manual_seed(seed)
    coarse = [max(2, round(n / control_spacing)) for n in shape]
    velocity = F.interpolate(
        torch.randn(1, 3, *coarse, generator=generator), size=shape, mode="trilinear", align_corners=True
    )
    for _ in range(3):  # the exponential's magnitude is not linear in v: rescale a few times
        largest = integrate_velocity(velocity, 7).norm(dim=1).max()
        velocity = velocity * (max_displacement_voxels / largest)
    return velocity


def make_case(t1: sitk.Image, aseg: sitk.Image, seed: int, max_mm: float, folder: Path) -> dict:
    geometry = ImageGeometry.from_image(t1)
    if len(set(geometry.spacing)) != 1:
        raise SystemExit("the benchmark assumes an isotropic image")
    image = torch.from_numpy(sitk.GetArrayFromImage(t1).astype(np.float32))[None, None]
    labels = torch.from_numpy(sitk.GetArrayFromImage(aseg).astype(np.int64))[None, None]
    velocity = random_velocity(tuple(image.shape[2:]), seed, max_mm / geometry.spacing[0])
    forward = integrate_velocity(velocity, 7)
    moving = warp(image, forward)
    moving_labels = warp_labels(labels, forward)
    truth = displacement_to_physical(integrate_velocity(-velocity, 7), geometry)  # fixed -> moving
    paths = {"fixed": folder / "fixed.nii.gz", "moving": folder / f"moving_{seed}.nii.gz"}
    sitk.WriteImage(geometry.apply_to(sitk.GetImageFromArray(image[0, 0].numpy())), str(paths["fixed"]))
    sitk.WriteImage(geometry.apply_to(sitk.GetImageFromArray(moving[0, 0].numpy())), str(paths["moving"]))
    moving_aseg = geometry.apply_to(sitk.GetImageFromArray(moving_labels[0, 0].numpy().astype(np.uint8)))
    return {
        "paths": paths,
        "moving_aseg": moving_aseg,
        "truth": truth,
        "max_true_mm": float(np.linalg.norm(truth, axis=-1).max()),
    }


def hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> float:
    """Symmetric 95th-percentile boundary distance (mm) of two boolean masks (k, j, i), as monai computes it."""
    if not a.any() or not b.any():
        return float("nan")
    both = np.argwhere(a | b)
    low, high = np.maximum(both.min(0) - 5, 0), both.max(0) + 6
    crop = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
    distances = []
    contours = []
    for mask in (a[crop], b[crop]):
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing(spacing)
        contour = sitk.BinaryContour(image, fullyConnected=False)
        contours.append(sitk.GetArrayFromImage(contour) > 0)
        distances.append(
            sitk.GetArrayFromImage(
                sitk.Abs(
                    sitk.SignedMaurerDistanceMap(
                        contour, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
                    )
                )
            )
        )
    forward = np.percentile(distances[1][contours[0]], 95)
    backward = np.percentile(distances[0][contours[1]], 95)
    return float(max(forward, backward))


def score(field: sitk.Image, case: dict, fixed_aseg: sitk.Image) -> dict:
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    warped = sitk.Resample(case["moving_aseg"], fixed_aseg, transform, sitk.sitkNearestNeighbor, 0)
    a, b = sitk.GetArrayViewFromImage(warped), sitk.GetArrayViewFromImage(fixed_aseg)
    dice, distances = [], []
    for label in LABELS:
        p, q = a == label, b == label
        if p.any() or q.any():
            dice.append(2.0 * np.count_nonzero(p & q) / (np.count_nonzero(p) + np.count_nonzero(q)))
            distances.append(hd95(p, q, fixed_aseg.GetSpacing()))
    array = sitk.GetArrayFromImage(field).astype(np.float64)
    stats = jacobian_stats(
        torch.from_numpy(physical_to_displacement(array, ImageGeometry.from_image(field)).astype(np.float32))[None]
    )
    brain = b > 0
    error = np.linalg.norm(array - case["truth"], axis=-1)
    return {
        "dice": float(np.mean(dice)),
        "hd95_mm": float(np.nanmean(distances)),
        "folding_percent": stats["folding_percent"],
        "std_log_jacobian": stats["std_log_jacobian"],
        "field_error_mm": float(error[brain].mean()),
        "field_error_all_mm": float(error.mean()),
    }


def run_method(method: str, case: dict, folder: Path, peer_python: str, threads: int) -> dict:
    python = peer_python if method in PEERS else sys.executable
    field_path, info_path = folder / f"{method}.nii.gz", folder / f"{method}.json"
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(threads),
    )
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # spinning OpenMP threads starve each other on a shared CPU
    env["PYTHONPATH"] = str(REPO)
    command = [
        python,
        str(Path(__file__).with_name("run_method.py")),
        method,
        str(case["paths"]["fixed"]),
        str(case["paths"]["moving"]),
        str(field_path),
        str(info_path),
        "--threads",
        str(threads),
    ]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read() if process.stdout else b""
    _, status, _ = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{output.decode(errors='replace')[-3000:]}")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return {
        "field": sitk.ReadImage(str(field_path), sitk.sitkVectorFloat64),
        "registration_s": info["registration_s"],
        "process_s": wall,
        "peak_rss_mb": info["peak_rss_mb"],
        "report": info.get("report"),
    }


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))} for k in keys}


def markdown(summary: dict, meta: dict) -> str:
    lines = [
        "# Registration benchmark (a): real T1 + aseg, known smooth deformation",
        "",
        f"{meta['seeds']} seeds, largest true displacement {meta['max_displacement_mm']} mm; {meta['threads']} threads per method; "
        f"CPU: {meta['cpu_count']} cores shared with other jobs (load average {meta['load_before'][0]:.1f} before, {meta['load_after'][0]:.1f} after). "
        "Mean +- std over seeds. Time = the registration call (imports and file I/O excluded); RSS = the whole process.",
        "",
        "| method | Dice | HD95 (mm) | % abs(J)<=0 | std log abs(J) | field error (mm) | time (s) | process (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, stats in summary.items():

        def cell(key: str, digits: int = 3, stats: dict = stats) -> str:
            if key not in stats:
                return "-"
            return f"{stats[key]['mean']:.{digits}f} +- {stats[key]['std']:.{digits}f}"

        lines.append(
            f"| {method} | {cell('dice')} | {cell('hd95_mm', 2)} | {cell('folding_percent', 4)} | {cell('std_log_jacobian')} | "
            f"{cell('field_error_mm')} | {cell('registration_s', 1)} | {cell('process_s', 1)} | {cell('peak_rss_mb', 0)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=["medfuse-fast", "medfuse-accurate", "elastix-bspline", "ants-syn"]
    )
    parser.add_argument("--max-displacement", type=float, default=8.0, help="largest true displacement in mm")
    parser.add_argument(
        "--peer-python", default="/work/bench-venv/bin/python", help="python with antspyx and itk-elastix"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="registration_a")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t1 = sitk.Cast(sitk.ReadImage(str(DATA / "vxm_test_scan_t1.nii.gz")), sitk.sitkFloat32)
    aseg = sitk.ReadImage(str(DATA / "vxm_test_scan_aseg.nii.gz"))
    meta = {
        "seeds": len(args.seeds),
        "max_displacement_mm": args.max_displacement,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_before": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "image": "vxm_test_scan_t1 160x192x224 1 mm",
    }
    rows: dict[str, list[dict]] = {m: [] for m in ["no registration", "true inverse", *args.methods]}
    per_seed = []
    with tempfile.TemporaryDirectory(prefix="medfuse-bench-") as tmp:
        folder = Path(tmp)
        for seed in args.seeds:
            case = make_case(t1, aseg, seed, args.max_displacement, folder)
            geometry = ImageGeometry.from_image(t1)
            identity = displacement_field_image(np.zeros((*geometry.size[::-1], 3)), geometry)
            rows["no registration"].append(score(identity, case, aseg))
            rows["true inverse"].append(score(displacement_field_image(case["truth"], geometry), case, aseg))
            for method in args.methods:
                result = run_method(method, case, folder, args.peer_python, args.threads)
                row = score(result["field"], case, aseg)
                row.update(
                    registration_s=result["registration_s"],
                    process_s=result["process_s"],
                    peak_rss_mb=result["peak_rss_mb"],
                )
                rows[method].append(row)
                per_seed.append(
                    {"seed": seed, "method": method, **row, "report_timings": (result["report"] or {}).get("timings_s")}
                )
                print(f"seed {seed} {method}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
            per_seed.append(
                {
                    "seed": seed,
                    "max_true_displacement_mm": case["max_true_mm"],
                    **{f"{k} {m}": v for m in ("no registration", "true inverse") for k, v in rows[m][-1].items()},
                }
            )
    meta["load_after"] = os.getloadavg()
    summary = {method: summarise(method_rows) for method, method_rows in rows.items() if method_rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "per_seed": per_seed}, indent=2)
    )
    (args.out / f"{args.name}.md").write_text(markdown(summary, meta))
    print(markdown(summary, meta))


if __name__ == "__main__":
    main()

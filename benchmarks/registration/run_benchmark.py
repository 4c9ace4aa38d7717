"""Registration benchmark (issue 3, section 3): our method and the peers on the same data in one run.

Cases (each scored the same way for every method, each method in its own process, same thread count):

* (a) real anatomy, known deformation: the real T1 + aseg (``../shared/data/brain_registration/vxm_test_scan_*``,
  160 x 192 x 224, 1 mm) warped by a random smooth diffeomorphism per seed (a stationary velocity
  field on a ~24 mm control grid, integrated by scaling and squaring and scaled so the largest
  displacement is ``--max-displacement`` mm); every method registers the warped image (moving) back
  to the original (fixed), and its field is compared with the known inverse.
* (b) inter-subject: the fixed image is synthesised from the real SynthSeg label map
  (``synthseg_training_seg_01``, extra-cerebral classes removed, cropped to the brain + 10 voxels)
  with T1 contrast, SynthMorph-style (:mod:`synthesis`: per-label Gaussian intensities, blur, bias
  field, noise; seeded); the moving image is the real T1 of the other subject.
* (c) multi-modal: as (b), with the moving image rendered from the moving subject's aseg in a
  T2-like contrast (same synthesis, other seed stream); LNCC (``medfuse-fast``) against MIND-SSC
  (``medfuse-multimodal``).

Metrics: Dice and HD95 (mm) over voxelmorph's standard 30 labels (those present in both label maps;
moving labels warped by nearest neighbour through the method's own field with SimpleITK, the same
code for every method); % voxels with |J| <= 0 and std(log|J|) of the whole field; on (a) the field
error mean |d - d_true| in mm over the brain; wall time of the registration call (imports and file
I/O excluded) and of the whole process; the process's peak RSS in MiB, measured by
``benchmarks/harness.py`` (VmHWM read in the method's own process when it ends).

HD95 follows ``monai.metrics.compute_hausdorff_distance(percentile=95)`` (the larger of the two
directed 95th percentiles of boundary-to-boundary distances) but uses SimpleITK distance maps,
because scipy is not installed in the project venv. All peer runs come first, then ours, so that a
long queue for the CPU hits every method alike. Writes ``benchmarks/results/registration_{a,b,c}.{json,md}``
and the combined ``registration_summary.md``.

Usage (one thread per method, through the machine's CPU slots)::

    cpuslot python benchmarks/registration/run_benchmark.py --cases a b c --peer-python /work/bench-venv/bin/python
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

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthesis  # noqa: E402
from harness import run_measured  # noqa: E402

from SlicerMedFuse.geometry import ImageGeometry  # noqa: E402
from SlicerMedFuse.nets.warping import integrate_velocity, warp, warp_labels  # noqa: E402
from SlicerMedFuse.registration.regularizers import jacobian_stats  # noqa: E402
from SlicerMedFuse.registration.transforms import (  # noqa: E402
    displacement_field_image,
    displacement_to_physical,
    physical_to_displacement,
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


def make_case_a(t1: sitk.Image, aseg: sitk.Image, seed: int, max_mm: float, folder: Path) -> dict:
    """Case (a): the real T1 warped by a known random diffeomorphism; the fixed image is the original."""
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
    paths = {"fixed": folder / "a_fixed.nii.gz", "moving": folder / f"a_moving_{seed}.nii.gz"}
    sitk.WriteImage(geometry.apply_to(sitk.GetImageFromArray(image[0, 0].numpy())), str(paths["fixed"]))
    sitk.WriteImage(geometry.apply_to(sitk.GetImageFromArray(moving[0, 0].numpy())), str(paths["moving"]))
    moving_aseg = geometry.apply_to(sitk.GetImageFromArray(moving_labels[0, 0].numpy().astype(np.uint8)))
    return {
        "name": f"a/{seed}",
        "paths": paths,
        "moving_aseg": moving_aseg,
        "fixed_labels": aseg,
        "truth": truth,
        "max_true_mm": float(np.linalg.norm(truth, axis=-1).max()),
    }


def make_case_synthetic(t1: sitk.Image, aseg: sitk.Image, seed: int, moving_contrast: str, folder: Path) -> dict:
    """Cases (b) and (c): a synthetic T1 of the SynthSeg subject (fixed) and the aseg subject (moving).

    ``moving_contrast`` is ``"real"`` (the real T1, case b) or ``"t2"`` (rendered from the aseg, case c).
    """
    seg = sitk.ReadImage(str(DATA / "synthseg_training_seg_01.nii.gz"))
    brain = sitk.GetImageFromArray(synthesis.brain_only(sitk.GetArrayFromImage(seg)).astype(np.int16))
    brain.CopyInformation(seg)
    fixed_labels = synthesis.crop_to_foreground(brain, margin=10)
    fixed_array = sitk.GetArrayFromImage(fixed_labels)
    means = synthesis.t1_means(sitk.GetArrayFromImage(t1), sitk.GetArrayFromImage(aseg))
    fixed = sitk.GetImageFromArray(synthesis.render(fixed_array, means, seed))
    fixed.CopyInformation(fixed_labels)
    if moving_contrast == "real":
        moving = t1
    else:
        aseg_array = sitk.GetArrayFromImage(aseg)
        moving = sitk.GetImageFromArray(synthesis.render(aseg_array, synthesis.t2_means(aseg_array), 1000 + seed))
        moving.CopyInformation(aseg)
    tag = "b" if moving_contrast == "real" else "c"
    paths = {"fixed": folder / f"{tag}_fixed_{seed}.nii.gz", "moving": folder / f"{tag}_moving_{seed}.nii.gz"}
    sitk.WriteImage(fixed, str(paths["fixed"]))
    sitk.WriteImage(sitk.Cast(moving, sitk.sitkFloat32), str(paths["moving"]))
    return {"name": f"{tag}/{seed}", "paths": paths, "moving_aseg": aseg, "fixed_labels": fixed_labels, "truth": None}


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


def score(field: sitk.Image, case: dict) -> dict:
    """Dice, HD95, Jacobian statistics (and the field error where the truth is known) of one field."""
    fixed_labels = case["fixed_labels"]
    transform = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    warped = sitk.Resample(case["moving_aseg"], fixed_labels, transform, sitk.sitkNearestNeighbor, 0)
    a, b = sitk.GetArrayViewFromImage(warped), sitk.GetArrayViewFromImage(fixed_labels)
    moving_ids = set(np.unique(sitk.GetArrayViewFromImage(case["moving_aseg"])).tolist())
    shared = [label for label in LABELS if label in moving_ids and np.any(b == label)]
    dice, distances = [], []
    for label in shared:
        p, q = a == label, b == label
        dice.append(2.0 * np.count_nonzero(p & q) / (np.count_nonzero(p) + np.count_nonzero(q)))
        distances.append(hd95(p, q, fixed_labels.GetSpacing()))
    array = sitk.GetArrayFromImage(field).astype(np.float64)
    stats = jacobian_stats(
        torch.from_numpy(physical_to_displacement(array, ImageGeometry.from_image(field)).astype(np.float32))[None]
    )
    row = {
        "dice": float(np.mean(dice)),
        "hd95_mm": float(np.nanmean(distances)),
        "folding_percent": stats["folding_percent"],
        "std_log_jacobian": stats["std_log_jacobian"],
        "labels": len(shared),
    }
    if case["truth"] is not None:
        error = np.linalg.norm(array - case["truth"], axis=-1)
        row["field_error_mm"] = float(error[b > 0].mean())
        row["field_error_all_mm"] = float(error.mean())
    return row


def run_method(method: str, case: dict, folder: Path, peer_python: str, threads: int) -> dict:
    """Run one method on one case in its own process; its field, times, CPU time and peak RSS."""
    python = peer_python if method in PEERS else sys.executable
    stem = f"{case['name'].replace('/', '_')}_{method}"
    field_path, info_path = folder / f"{stem}.nii.gz", folder / f"{stem}.json"
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(threads),
    )
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # spinning OpenMP threads starve each other on a shared CPU
    env["PYTHONPATH"] = str(REPO)
    arguments = [
        method,
        str(case["paths"]["fixed"]),
        str(case["paths"]["moving"]),
        str(field_path),
        str(info_path),
        "--threads",
        str(threads),
    ]
    if case["truth"] is None:  # inter-subject pairs need a linear stage: elastix gets its default affine map first
        arguments.append("--affine-first")
    run = run_measured((python, Path(__file__).with_name("run_method.py"), arguments), env=env)
    if not run.ok:
        raise RuntimeError(f"{method} failed:\n{run.stderr_tail[-3000:]}")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    field = sitk.ReadImage(str(field_path), sitk.sitkVectorFloat64)
    field_path.unlink()
    return {
        "field": field,
        "registration_s": info["registration_s"],
        "registration_cpu_s": info.get("registration_cpu_s", float("nan")),
        "process_s": run.wall_s,
        "process_cpu_s": run.cpu_s,
        "peak_rss_mib": run.peak_rss_mib,
        "report": info.get("report"),
    }


def _current_fields(values: dict) -> dict:
    """A row or summary of an earlier results file with today's field names: runs before the shared
    harness stored the same measure (VmHWM / 1024, read in the method's process) as ``peak_rss_mb``."""
    return {("peak_rss_mib" if key == "peak_rss_mb" else key): value for key, value in values.items()}


def summarise(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {k: {"mean": float(np.mean([r[k] for r in rows])), "std": float(np.std([r[k] for r in rows]))} for k in keys}


TITLES = {
    "a": "Registration benchmark (a): real T1 + aseg, known smooth deformation",
    "b": "Registration benchmark (b): inter-subject, synthetic T1 (SynthSeg labels) <- real T1",
    "c": "Registration benchmark (c): multi-modal, synthetic T1 (SynthSeg labels) <- T2-like rendering of the other subject",
}


def _cell(stats: dict, key: str, digits: int = 3) -> str:
    if key not in stats:
        return "-"
    return f"{stats[key]['mean']:.{digits}f} +- {stats[key]['std']:.{digits}f}"


def markdown(case: str, summary: dict, meta: dict) -> str:
    load = meta["load"][case]
    lines = [
        f"# {TITLES[case]}",
        "",
        f"{meta['seeds'][case]} seeds; {meta['threads']} thread(s) per method (OMP/MKL/ITK), one method at a time; "
        f"CPU: {meta['cpu_count']} cores shared with other jobs (1-min load average {load['before']:.1f} before the "
        f"first method of this case, {load['after']:.1f} after the last). Mean +- std over seeds. Time = the "
        "registration call (imports and file I/O excluded), wall clock and CPU; RSS = the whole process.",
        "",
    ]
    if case in meta.get("peers_run", {}):
        peers = meta["peers_run"][case]
        lines += [
            f"The peers ran in an earlier pass of this script on the same cases and seeds (started {peers['started']}, "
            f"load {peers['load']['before']:.1f} before, {peers['load']['after']:.1f} after), because the shared CPU "
            f"queue made one pass too long to wait for; ours ran in the pass started {meta['started']}.",
            "",
        ]
    if case == "a":
        lines.append(f"Largest true displacement {meta['max_displacement_mm']} mm.")
    else:
        lines.append(
            "elastix runs its default affine map before its default B-spline map here (an inter-subject pair needs a "
            "linear stage; ANTs SyN and ours have one)."
        )
    lines += [
        "",
        "| method | Dice | HD95 (mm) | % abs(J)<=0 | std log abs(J) | field error (mm) | time (s) | CPU (s) | process (s) | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, stats in summary.items():
        lines.append(
            f"| {method} | {_cell(stats, 'dice')} | {_cell(stats, 'hd95_mm', 2)} | {_cell(stats, 'folding_percent', 4)} | "
            f"{_cell(stats, 'std_log_jacobian')} | {_cell(stats, 'field_error_mm')} | {_cell(stats, 'registration_s', 1)} | "
            f"{_cell(stats, 'registration_cpu_s', 1)} | {_cell(stats, 'process_s', 1)} | {_cell(stats, 'peak_rss_mib', 0)} |"
        )
    return "\n".join(lines) + "\n"


def summary_markdown(summaries: dict[str, dict], meta: dict, loads: dict[str, dict] | None = None) -> str:
    """The combined table and the issue's bar, per case: ours against the best and the fastest peer."""
    lines = [
        "# Registration benchmark: summary of cases (a), (b), (c)",
        "",
        f"One thread per method; {meta['cpu_count']}-core machine shared with other jobs (see each case's load). "
        "Ratios use the mean wall time of the registration call; CPU-time ratios are less sensitive to the load.",
        "",
    ]
    for case, load in sorted((loads or {}).items()):
        if load:
            lines.append(
                f"* case {case}: 1-min load average {load['before']:.1f} before its first method, {load['after']:.1f} after its last"
                + (f" (run started {load['started']})" if load.get("started") else "")
            )
    lines += [
        "",
        "| case | method | Dice | best peer Dice | field error (mm) | best peer error | % abs(J)<=0 | time (s) | fastest peer (s) | time ratio | CPU ratio | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, summary in summaries.items():
        peers = {m: s for m, s in summary.items() if m in PEERS}
        if not peers:
            continue
        best = max(peers.values(), key=lambda s: s["dice"]["mean"])
        fastest = min(peers.values(), key=lambda s: s["registration_s"]["mean"])
        # runs from before CPU time was recorded have none: their CPU ratio is left out
        fastest_cpu = min(s.get("registration_cpu_s", {"mean": float("nan")})["mean"] for s in peers.values())
        best_error = min((s["field_error_mm"]["mean"] for s in peers.values() if "field_error_mm" in s), default=None)
        for method, stats in summary.items():
            if "registration_s" not in stats:
                continue
            error = f"{stats['field_error_mm']['mean']:.3f}" if "field_error_mm" in stats else "-"
            lines.append(
                f"| {case} | {method} | {stats['dice']['mean']:.3f} | {best['dice']['mean']:.3f} | {error} | "
                f"{'-' if best_error is None else f'{best_error:.3f}'} | {stats['folding_percent']['mean']:.4f} | "
                f"{stats['registration_s']['mean']:.1f} | {fastest['registration_s']['mean']:.1f} | "
                f"{stats['registration_s']['mean'] / fastest['registration_s']['mean']:.2f} | "
                f"{stats.get('registration_cpu_s', {'mean': float('nan')})['mean'] / fastest_cpu:.2f} | "
                f"{stats['peak_rss_mib']['mean']:.0f} |"
            )
    return "\n".join(lines) + "\n"


DEFAULT_METHODS = {
    "a": ["medfuse-fast", "medfuse-accurate", "medfuse-diffeomorphic"],
    "b": ["medfuse-fast", "medfuse-accurate"],
    "c": ["medfuse-fast", "medfuse-multimodal"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["a", "b", "c"], choices=["a", "b", "c"])
    parser.add_argument("--seeds-a", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds-bc", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--methods", nargs="+", help="our methods for every case (default: per case, see DEFAULT_METHODS)"
    )
    parser.add_argument("--peers", nargs="*", default=list(PEERS))
    parser.add_argument("--max-displacement", type=float, default=8.0, help="largest true displacement in mm (case a)")
    parser.add_argument(
        "--peer-python", default="/work/bench-venv/bin/python", help="python with antspyx and itk-elastix"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument(
        "--peers-from",
        type=Path,
        help="take the peers' rows from an earlier run's results folder (same cases and seeds) instead of running them",
    )
    parser.add_argument("--summary-only", action="store_true", help="only rebuild registration_summary.md from --out")
    args = parser.parse_args()
    if args.summary_only:
        write_summary(args.out, {}, {"cpu_count": os.cpu_count()})
        return
    torch.set_num_threads(args.threads)
    t1 = sitk.Cast(sitk.ReadImage(str(DATA / "vxm_test_scan_t1.nii.gz")), sitk.sitkFloat32)
    aseg = sitk.ReadImage(str(DATA / "vxm_test_scan_aseg.nii.gz"))
    seeds = {case: args.seeds_a if case == "a" else args.seeds_bc for case in args.cases}
    meta = {
        "seeds": {case: len(seeds[case]) for case in args.cases},
        "max_displacement_mm": args.max_displacement,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load": {},
        "order": "all peer runs first (every case), then ours",
    }
    with tempfile.TemporaryDirectory(prefix="medfuse-bench-") as tmp:
        folder = Path(tmp)
        cases = {}
        for case in args.cases:
            for seed in seeds[case]:
                if case == "a":
                    cases[(case, seed)] = make_case_a(t1, aseg, seed, args.max_displacement, folder)
                else:
                    cases[(case, seed)] = make_case_synthetic(t1, aseg, seed, "real" if case == "b" else "t2", folder)
        rows: dict[str, dict[str, list[dict]]] = {case: {} for case in args.cases}
        per_seed: dict[str, list[dict]] = {case: [] for case in args.cases}
        for (case, _seed), data in cases.items():
            geometry = ImageGeometry.from_image(data["fixed_labels"])
            identity = displacement_field_image(np.zeros((*geometry.size[::-1], 3)), geometry)
            rows[case].setdefault("no registration", []).append(score(identity, data))
            if data["truth"] is not None:
                truth = displacement_field_image(data["truth"], geometry)
                rows[case].setdefault("true inverse", []).append(score(truth, data))
        if args.peers_from is not None:
            for case in args.cases:
                earlier = json.loads((args.peers_from / f"registration_{case}.json").read_text(encoding="utf-8"))
                meta.setdefault("peers_run", {})[case] = {
                    "started": earlier["meta"]["started"],
                    "load": earlier["meta"]["load"],
                }
                for row in map(_current_fields, earlier["per_seed"]):
                    if row["method"] in args.peers:
                        per_seed[case].append(row)
                        rows[case].setdefault(row["method"], []).append(
                            {k: v for k, v in row.items() if k not in ("seed", "method", "report_timings")}
                        )
            args.peers = []
        jobs = [(key, m) for m in args.peers for key in cases] + [
            (key, m) for key in cases for m in (args.methods or DEFAULT_METHODS[key[0]])
        ]
        if args.methods == ["none"]:
            jobs = [job for job in jobs if job[1] in PEERS]
        for (case, seed), method in jobs:
            load = meta["load"].setdefault(case, {"before": os.getloadavg()[0]})
            result = run_method(method, cases[(case, seed)], folder, args.peer_python, args.threads)
            load["after"] = os.getloadavg()[0]
            row = score(result["field"], cases[(case, seed)])
            row.update(
                {
                    k: result[k]
                    for k in ("registration_s", "registration_cpu_s", "process_s", "process_cpu_s", "peak_rss_mib")
                }
            )
            rows[case].setdefault(method, []).append(row)
            timings = (result["report"] or {}).get("timings_s")
            per_seed[case].append({"seed": seed, "method": method, **row, "report_timings": timings})
            print(f"{case} seed {seed} {method}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = {}
    for case in args.cases:
        summary = {method: summarise(method_rows) for method, method_rows in rows[case].items()}
        summaries[case] = summary
        case_meta = {**meta, "seeds": meta["seeds"][case], "load": meta["load"].get(case)}
        (args.out / f"registration_{case}.json").write_text(
            json.dumps({"meta": case_meta, "summary": summary, "per_seed": per_seed[case]}, indent=2)
        )
        (args.out / f"registration_{case}.md").write_text(markdown(case, summary, meta))
        print(markdown(case, summary, meta))
    write_summary(args.out, summaries, meta)


def write_summary(out: Path, summaries: dict[str, dict], meta: dict) -> None:
    """The combined table, with the cases of earlier runs written to the same folder."""
    loads = {}
    for case in ("a", "b", "c"):
        earlier = out / f"registration_{case}.json"
        if case not in summaries and earlier.is_file():
            data = json.loads(earlier.read_text(encoding="utf-8"))
            summaries[case] = {method: _current_fields(stats) for method, stats in data["summary"].items()}
            loads[case] = {**(data["meta"].get("load") or {}), "started": data["meta"].get("started")}
        elif case in summaries:
            loads[case] = {**(meta.get("load", {}).get(case) or {}), "started": meta.get("started")}
    text = summary_markdown(dict(sorted(summaries.items())), meta, loads)
    (out / "registration_summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

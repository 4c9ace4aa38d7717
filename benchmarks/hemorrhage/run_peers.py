"""Peers of the hemorrhage benchmark: BLAST-CT (pretrained, real scans) and nnU-Net v2's predictor, beside ours.

Usage (from the repository root, with the project's venv; every heavy step runs in its own process)::

    python benchmarks/hemorrhage/run_peers.py --bench-python /work/bench-venv-hem/bin/python \
        --blast-weights ../shared/peers/blast-ct --data SIM_DATASET --work WORK_DIR \
        [--model BUNDLE_DIR] [--cases 2] [--blast-members 1] [--threads 1] [--nnunet-mirroring] [--reuse]

The peers live only in a separate benchmark venv (``--bench-python``; see
``benchmarks/hemorrhage/README.md``): nothing of BLAST-CT or nnU-Net ships with SlicerMedFuse. This
one file is both the driver (project venv) and, called as ``... run_peers.py worker-<name>`` by the
driver, the worker that imports a peer inside the benchmark venv.

1. **BLAST-CT** (Monteiro et al., Lancet Digit. Health 2020; PyPI ``blast-ct`` 2.1.0 code, its
   DeepMedic ensemble from ``--blast-weights`` loaded with ``torch.load(weights_only=True)``; the
   first ``--blast-members`` members, averaged as its ``ModelInferenceEnsemble`` does). It runs on
   the real normal head CT (every voxel it calls a lesion is a false positive, reported in mL per
   class) and on the first ``--cases`` held-out bleed cases of ``--data`` (``imagesTs``): classes are
   mapped BHSD -> BLAST-CT as IPH -> IPH, IVH -> IVH, EDH + SDH -> EAH (SAH has no BLAST-CT class);
   Dice per mapped class and the detection rate per BHSD class (a case's class counts as detected
   when the mapped BLAST-CT class overlaps it; for SAH any BLAST-CT haemorrhage class) -- the check
   that a model trained on real scans sees the simulated bleeds. BLAST-CT's data loader runs
   in-process (``num_workers=0``) so that the job uses one process and ``--threads`` threads.
2. **nnU-Net v2 predictor timing**: a model folder for ``nnUNetPredictor`` is written with a
   ``plans.json`` whose ``3d_fullres`` configuration has our network's topology (kernels, strides,
   features per stage, two convolutions per stage; PlainConvUNet = DynUNet without residuals), our
   patch and spacing, and ``CTNormalization`` statistics that reproduce BHSD's clip [-40, 120] HU and
   ``(HU - 40) / 80``; the checkpoint holds random weights of nnU-Net's own network. (nnU-Net reads
   checkpoints with ``torch.load(weights_only=False)``; the file is written by this script a moment
   before, so unpickling it is safe.) nnU-Net's sequential predictor (no worker processes) and ours
   (``medfuse run hemorrhage``) then segment the real CT resampled to 512 x 512 x 40 voxels, in the
   same run with the same thread count, without and (``--nnunet-mirroring``) with mirroring along
   our model's mirror axes.
3. **Ours** (``--model``): the same cases and CTs through ``medfuse run hemorrhage``, scored both on
   BLAST-CT's mapped classes and on BHSD's five. Without ``--model`` ours is timed with random
   weights of the default plan (BHSD patch 32 x 128 x 128, nnU-Net filters 32-320, ``--spacing``),
   and the tables say so.

Every run is a fresh process measured by ``benchmarks/harness.py``: wall time, CPU time and peak RSS
in MiB (VmHWM read inside the run's own process, ours and the peers alike, so this driver's torch and
MONAI do not count). With ``--reuse`` a run whose record is already in ``--work`` is not repeated (its
record says when it was measured); records written before the harness (peak from ``os.wait4``, which
carried the driver's size into the child) are measured again.
Writes ``OUTPUT/hemorrhage_peers.json`` and ``OUTPUT/hemorrhage_peers.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from harness import PythonCommand, peak_cell, run_measured, stored_peak_mib  # noqa: E402

DEFAULT_CT = REPO.parent / "shared" / "data" / "head_ct" / "invesalius_ct0051_head.nii.gz"
DEFAULT_BLAST = REPO.parent / "shared" / "peers" / "blast-ct"
DEFAULT_OUTPUT = REPO / "benchmarks" / "results"

#: BLAST-CT's label values (its config ``class_names``; 0 is background).
BLAST_CLASSES = {"IPH": 1, "EAH": 2, "oedema": 3, "IVH": 4}
#: BHSD label values that make up each compared class (BLAST-CT's EAH = epidural + subdural).
MAPPED_BHSD = {"IPH": (2,), "IVH": (3,), "EAH": (1, 5)}
#: BHSD class -> the BLAST-CT classes that count as detecting it (SAH: any haemorrhage class).
DETECTED_BY = {"EDH": ("EAH",), "IPH": ("IPH",), "IVH": ("IVH",), "SAH": ("IPH", "EAH", "IVH"), "SDH": ("EAH",)}
BHSD_VALUES = {"EDH": 1, "IPH": 2, "IVH": 3, "SAH": 4, "SDH": 5}


# --- workers (run inside the benchmark venv; import only the peer, torch, numpy, SimpleITK) --------


def _worker_blast(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_peers.py worker-blast")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--members", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import tempfile

    import numpy as np
    import pandas as pd
    import SimpleITK as sitk
    import torch

    torch.set_num_threads(args.threads)
    from blast_ct.nifti.savers import NiftiPatchSaver
    from blast_ct.read_config import get_model, get_test_loader
    from blast_ct.trainer.model_trainer import task_predict_fn_dict

    config = json.loads((args.weights / "config.json").read_text(encoding="utf-8"))
    config["test"]["num_workers"] = 0  # one process: the patches are cut in the main process
    members = sorted(args.weights.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))[: args.members]
    states = [torch.load(p, map_location="cpu", weights_only=True) for p in members]
    timings = {"import_and_load": time.perf_counter() - started}
    with tempfile.TemporaryDirectory() as job:
        table = Path(job) / "test.csv"
        pd.DataFrame([["case", args.input]], columns=["id", "image"]).to_csv(table, index=False)
        model = get_model(config)
        loader = get_test_loader(config, model, str(table), use_cuda=False)
        saver = NiftiPatchSaver(job, loader, write_prob_maps=False)
        predict = task_predict_fn_dict[config["data"]["task"]]
        model.eval()
        stage = time.perf_counter()
        patches = 0
        for inputs in loader:
            summed = None
            for state in states:  # BLAST-CT's ModelInferenceEnsemble: mean of the members' softmax
                model.load_state_dict(state)
                with torch.no_grad():
                    logits, extra = model(**inputs)
                probabilities, _ = predict(logits)
                summed = probabilities if summed is None else summed + probabilities
            assert summed is not None
            extra.update({"pred": torch.argmax(summed, dim=1), "prob": summed / len(states), "logits": summed})
            saver(extra)
            patches += int(inputs["image"].shape[0])
        timings["inference"] = time.perf_counter() - stage
        prediction = sitk.ReadImage(str(Path(job) / "predictions" / "case_prediction.nii.gz"))
    labels = sitk.Cast(prediction, sitk.sitkUInt8)
    sitk.WriteImage(labels, args.output, True)
    voxel_ml = float(np.prod(labels.GetSpacing())) / 1000.0
    counts = np.bincount(sitk.GetArrayViewFromImage(labels).ravel(), minlength=5)
    report = {
        "members": [p.name for p in members],
        "patches": patches,
        "volumes_ml": {name: round(float(counts[v]) * voxel_ml, 3) for name, v in BLAST_CLASSES.items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    Path(args.report).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def _nnunet_plans(arch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """nnU-Net v2 ``plans.json`` and ``dataset.json`` for our topology, patch, spacing and normalisation."""
    stages = len(arch["filters"])
    configuration = {
        "data_identifier": "nnUNetPlans_3d_fullres",
        "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2,
        "patch_size": arch["patch_size_zyx"],
        "median_image_size_in_voxels": arch["patch_size_zyx"],
        "spacing": arch["spacing_zyx"],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {
                "n_stages": stages,
                "features_per_stage": arch["filters"],
                "conv_op": "torch.nn.modules.conv.Conv3d",
                "kernel_sizes": arch["kernel_size"],
                "strides": arch["strides"],
                "n_conv_per_stage": [2] * stages,
                "n_conv_per_stage_decoder": [2] * (stages - 1),
                "conv_bias": True,
                "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                "dropout_op": None,
                "dropout_op_kwargs": None,
                "nonlin": "torch.nn.LeakyReLU",
                "nonlin_kwargs": {"inplace": True},
            },
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": True,
    }
    # CTNormalization clips to [percentile_00_5, percentile_99_5] and standardises with mean and std:
    # these values make it BHSD's clip [-40, 120] HU and (HU - 40) / 80.
    intensity = {"max": 120.0, "mean": 40.0, "median": 40.0, "min": -40.0}
    intensity |= {"percentile_00_5": -40.0, "percentile_99_5": 120.0, "std": 80.0}
    plans = {
        "dataset_name": "Dataset901_MedFuseHemorrhageTiming",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": arch["spacing_zyx"],
        "original_median_shape_after_transp": arch["patch_size_zyx"],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres": configuration},
        "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": intensity},
    }
    labels = {"background": 0, "EDH": 1, "IPH": 2, "IVH": 3, "SAH": 4, "SDH": 5}
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}
    return plans, dataset


def _worker_nnunet_build(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_peers.py worker-nnunet-build")
    parser.add_argument("--arch", required=True, type=Path, help="JSON: our topology, patch, spacing, mirror axes")
    parser.add_argument("--folder", required=True, type=Path, help="nnU-Net model folder to write")
    args = parser.parse_args(argv)
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = json.loads(args.arch.read_text(encoding="utf-8"))
    plans, dataset = _nnunet_plans(arch)
    network_arch = plans["configurations"]["3d_fullres"]["architecture"]
    torch.manual_seed(0)
    network = get_network_from_plans(
        network_arch["network_class_name"],
        network_arch["arch_kwargs"],
        network_arch["_kw_requires_import"],
        arch["in_channels"],
        arch["out_channels"],
        deep_supervision=False,
    )
    (args.folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (args.folder / "plans.json").write_text(json.dumps(plans, indent=1), encoding="utf-8")
    (args.folder / "dataset.json").write_text(json.dumps(dataset, indent=1), encoding="utf-8")
    checkpoint = {
        "network_weights": network.state_dict(),
        "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
        "trainer_name": "nnUNetTrainer",
        "inference_allowed_mirroring_axes": tuple(arch["mirror_axes"]),
    }
    torch.save(checkpoint, args.folder / "fold_0" / "checkpoint_final.pth")
    parameters = sum(p.numel() for p in network.parameters())
    print(json.dumps({"parameters": parameters}))
    return 0


def _worker_nnunet_predict(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_peers.py worker-nnunet-predict")
    parser.add_argument("--folder", required=True, type=Path)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True, type=Path, help="output file stem folder")
    parser.add_argument("--mirroring", action="store_true")
    parser.add_argument("--tile-step", type=float, default=0.5, help="window step / patch (1 - our overlap)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    # nnU-Net's export sets torch's thread count to this (default 8); keep it at ours.
    os.environ["nnUNet_def_n_proc"] = str(args.threads)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ.setdefault(name, str(args.folder.parent))
    import torch

    torch.set_num_threads(args.threads)
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(
        tile_step_size=args.tile_step,
        use_gaussian=True,
        use_mirroring=args.mirroring,
        perform_everything_on_device=False,
        device=torch.device("cpu"),
        allow_tqdm=False,
    )
    predictor.initialize_from_trained_model_folder(str(args.folder), use_folds=(0,))
    timings = {"import_and_load": time.perf_counter() - started}
    stage = time.perf_counter()
    args.output.mkdir(parents=True, exist_ok=True)
    predictor.predict_from_files_sequential([[args.input]], [str(args.output / "nnunet")], overwrite=True)
    timings["predict"] = time.perf_counter() - stage
    report = {
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "mirroring_axes": list(predictor.allowed_mirroring_axes or ()) if args.mirroring else [],
        "threads": torch.get_num_threads(),
    }
    Path(args.report).write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


WORKERS = {"worker-blast": _worker_blast, "worker-nnunet-build": _worker_nnunet_build}
WORKERS["worker-nnunet-predict"] = _worker_nnunet_predict


# --- driver (project venv) -------------------------------------------------------------------------


def measured(command: PythonCommand, record: Path, reuse: bool) -> dict[str, Any]:
    """Run a Python ``command`` in a fresh process (or reuse its record); its measurement and JSON report.

    A record without ``peak_method`` predates the shared harness (its peak came from ``os.wait4``) and
    is measured again.
    """
    if reuse and record.exists():
        earlier = json.loads(record.read_text(encoding="utf-8"))
        if "peak_method" in earlier:
            return earlier
    log = record.with_suffix(".log")
    run = run_measured(command, log=log)
    if not run.ok:
        raise RuntimeError(f"{command[1]} {' '.join(map(str, command[2][:2]))} ... failed; see {log}")
    arguments = [str(a) for a in command[2]]
    report_path = Path(arguments[arguments.index("--report") + 1]) if "--report" in arguments else None
    result = {
        **run.to_dict(),
        "report": json.loads(report_path.read_text(encoding="utf-8")) if report_path else None,
    }
    record.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


def run_blast(args: argparse.Namespace, image: Path, name: str) -> tuple[dict[str, Any], Path]:
    folder = args.work / "blast"
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{name}.nii.gz"
    worker = blast_worker(
        image, output, args.blast_weights, args.blast_members, args.threads, folder / f"{name}.report.json"
    )
    return measured(
        (args.bench_python, Path(__file__).resolve(), worker), folder / f"{name}.run.json", args.reuse
    ), output


def blast_worker(image: Path, output: Path, weights: Path, members: int, threads: int, report: Path) -> list[str]:
    """Arguments of this script's ``worker-blast`` (run by the benchmark venv's python): BLAST-CT on one CT."""
    return [
        "worker-blast", "--input", str(image), "--output", str(output), "--weights", str(weights),
        "--members", str(members), "--threads", str(threads), "--report", str(report),
    ]  # fmt: skip


def run_ours(args: argparse.Namespace, model: Path, image: Path, name: str, mirroring: bool) -> tuple[dict, Path]:
    folder = args.work / "ours" / model.name
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{name}.nii.gz"
    arguments = [
        "run", "hemorrhage", "--input", f"ct={image}", "--output", str(output),
        "--model", str(model), "--threads", str(args.threads), "--device", "cpu", "--progress", "none",
        "--param", f"mirroring={str(mirroring).lower()}", "--param", f"overlap={args.overlap}",
        "--report", str(folder / f"{name}.report.json"),
    ]  # fmt: skip
    command = (sys.executable, "-m SlicerMedFuse", arguments)
    return measured(command, folder / f"{name}.run.json", args.reuse), output


def mapped_scores(prediction: Any, truth: Any, prediction_is_bhsd: bool) -> dict[str, Any]:
    """Dice per BLAST-CT class (IPH, IVH, EAH) and detection per BHSD class of one case (MONAI Dice)."""
    import numpy as np
    import SimpleITK as sitk
    import torch
    from monai.metrics import compute_dice
    from monai.networks.utils import one_hot

    pred = sitk.GetArrayFromImage(prediction)
    gt = sitk.GetArrayFromImage(truth)
    names = list(MAPPED_BHSD)
    pred_masks = {
        name: np.isin(pred, MAPPED_BHSD[name]) if prediction_is_bhsd else pred == BLAST_CLASSES[name] for name in names
    }
    gt_masks = {name: np.isin(gt, MAPPED_BHSD[name]) for name in names}
    pred_map, gt_map = np.zeros(pred.shape, np.int64), np.zeros(gt.shape, np.int64)
    for value, name in enumerate(names, start=1):
        pred_map[pred_masks[name]] = value
        gt_map[gt_masks[name]] = value
    dice = compute_dice(
        one_hot(torch.from_numpy(pred_map)[None, None], len(names) + 1),
        one_hot(torch.from_numpy(gt_map)[None, None], len(names) + 1),
        include_background=False,
        ignore_empty=True,
    )[0]
    voxel_ml = float(np.prod(truth.GetSpacing())) / 1000.0
    scores: dict[str, Any] = {"dice": {}, "gt_ml": {}, "pred_ml": {}, "detected": {}}
    for i, name in enumerate(names):
        present = bool(gt_masks[name].any())
        scores["dice"][name] = float(dice[i]) if present else None
        scores["gt_ml"][name] = round(float(gt_masks[name].sum()) * voxel_ml, 3)
        scores["pred_ml"][name] = round(float(pred_masks[name].sum()) * voxel_ml, 3)
    if not prediction_is_bhsd:  # oedema: BLAST-CT's fourth class, never a bleed here
        scores["pred_ml"]["oedema"] = round(float((pred == BLAST_CLASSES["oedema"]).sum()) * voxel_ml, 3)
    for bhsd, detectors in DETECTED_BY.items():
        region = gt == BHSD_VALUES[bhsd]
        if region.any():
            hit = np.logical_or.reduce([pred_masks[d] for d in detectors])
            scores["detected"][bhsd] = bool(np.logical_and(hit, region).any())
        else:
            scores["detected"][bhsd] = None
    return scores


def summarise(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean Dice per mapped class over the cases that contain it; detection rate per BHSD class."""
    dice, detection = {}, {}
    for name in MAPPED_BHSD:
        values = [c["dice"][name] for c in cases.values() if c["dice"][name] is not None]
        dice[name] = {"mean": round(sum(values) / len(values), 4) if values else None, "cases": len(values)}
    for name in DETECTED_BY:
        flags = [c["detected"][name] for c in cases.values() if c["detected"][name] is not None]
        detection[name] = {"detected": sum(flags), "cases": len(flags)}
    available = [v["mean"] for v in dice.values() if v["mean"] is not None]
    return {
        "dice": dice,
        "mean_dice": round(sum(available) / len(available), 4) if available else None,
        "detection": detection,
    }


def held_out_cases(data: Path, count: int, chosen: list[str] | None = None) -> list[tuple[str, Path, Path]]:
    """The ``chosen`` or else the first ``count`` held-out bleed cases of a simulated dataset: (id, image, labels)."""
    if chosen:
        return [(i, data / "imagesTs" / f"{i}_0000.nii.gz", data / "labelsTs" / f"{i}.nii.gz") for i in chosen]
    dataset = json.loads((data / "dataset.json").read_text(encoding="utf-8"))
    listed = dataset.get("simulation", {}).get("cases", {}).get("test")
    ids = (
        [c["case"] for c in listed if c["bleed"]]
        if listed
        else sorted(p.name[:-7] for p in (data / "labelsTs").glob("*.nii.gz"))
    )
    return [(i, data / "imagesTs" / f"{i}_0000.nii.gz", data / "labelsTs" / f"{i}.nii.gz") for i in ids[:count]]


def architecture_for_timing(args: argparse.Namespace) -> tuple[dict[str, Any], Path, str]:
    """Our network definition for the nnU-Net plan, and the bundle timed as ours (random weights without --model)."""
    from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing
    from SlicerMedFuse.models.bundle import load_manifest

    if args.model is None:
        from SlicerMedFuse.hemorrhage.training import HemorrhageTrainingConfig, _manifest, network_definition
        from SlicerMedFuse.models.bundle import save_bundle
        from SlicerMedFuse.nets.registry import build_network

        config = HemorrhageTrainingConfig(model_id="medfuse-hemorrhage-random", license="GPL-2.0-only")
        preprocessing = HemorrhagePreprocessing(spacing_mm=tuple(args.spacing), patch_size_zyx=config.patch_size_zyx)
        definition = network_definition(preprocessing, config)
        import torch

        torch.manual_seed(0)
        notes = "random weights: the default plan's architecture, for timing only"
        manifest = _manifest(preprocessing, definition, config, notes, True, notes, "run_peers.py")
        bundle = save_bundle(build_network(*definition), manifest, args.work / "bundle", overwrite=True)
        label = "default plan (BHSD patch, nnU-Net filters), random weights"
    else:
        bundle = args.model
        label = f"{args.model.name}"
    manifest = load_manifest(bundle)
    preprocessing = HemorrhagePreprocessing.from_dict(manifest.preprocessing)
    network_args = manifest.architecture_args
    arch = {
        "ours_architecture": manifest.architecture,
        "in_channels": 1,  # nnU-Net gets the single brain-window channel (BHSD)
        "out_channels": int(network_args["out_channels"]),
        "kernel_size": network_args["kernel_size"],
        "strides": network_args["strides"],
        "filters": network_args["filters"],
        "patch_size_zyx": list(preprocessing.patch_size_zyx),
        "spacing_zyx": list(preprocessing.spacing_zyx),
        "mirror_axes": list(preprocessing.mirror_axes),
    }
    return arch, bundle, label


def run_timing(args: argparse.Namespace, results: dict[str, Any]) -> None:
    sys.path.insert(0, str(HERE))
    from evaluate_model import large_ct

    arch, bundle, label = architecture_for_timing(args)
    folder = args.work / "nnunet" / bundle.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "arch.json").write_text(json.dumps(arch, indent=1), encoding="utf-8")
    model_folder = folder / "model"
    build = [
        str(args.bench_python), str(Path(__file__).resolve()), "worker-nnunet-build",
        "--arch", str(folder / "arch.json"), "--folder", str(model_folder),
    ]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True)
    large = args.work / "head_ct_512x512x40.nii.gz"
    if not large.exists():
        large_ct(args.ct, args.work)  # writes exactly this file
    timing: dict[str, Any] = {"input": "real head CT resampled to 512 x 512 x 40 (linear)", "ours_model": label}
    timing["architecture"] = arch
    for mirroring in (False, True) if args.nnunet_mirroring else (False,):
        tag = "mirroring" if mirroring else "no_mirroring"
        ours, _ = run_ours(args, bundle, large, f"large_{tag}", mirroring)
        worker = [
            "worker-nnunet-predict", "--folder",
            str(model_folder), "--input", str(large), "--output", str(folder / f"pred_{tag}"),
            "--threads", str(args.threads), "--report", str(folder / f"{tag}.report.json"),
            "--tile-step", str(1.0 - args.overlap),
        ] + (["--mirroring"] if mirroring else [])  # fmt: skip
        nnunet = measured((args.bench_python, Path(__file__).resolve(), worker), folder / f"{tag}.run.json", args.reuse)
        timing[tag] = {"ours": _brief(ours), "nnunet": _brief(nnunet)}
        print(f"timing {tag}: ours {ours['wall_s']} s, nnU-Net {nnunet['wall_s']} s", file=sys.stderr)
    results["timing_512x512x40"] = timing


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    report = run.get("report") or {}
    return {
        "wall_s": run["wall_s"],
        **dict(zip(("peak_rss_mib", "peak_method"), stored_peak_mib(run), strict=True)),
        "cpu_s": run.get("cpu_s"),
        "timings_s": report.get("timings_s"),
        "measured_at": run.get("measured_at"),
        "load_1min": run.get("load_1min_before", run.get("load_1min")),
    }


def _member_numbers(args: argparse.Namespace) -> list[int]:
    """The numbers of the ensemble members used (the first ``--blast-members`` in numeric order)."""
    numbers = sorted(int(p.stem.split("_")[1]) for p in args.blast_weights.glob("model_*.pt"))
    return numbers[: args.blast_members]


def ours_prediction(args: argparse.Namespace, image: Path, case_id: str) -> tuple[dict[str, Any], Path]:
    """Run ours on a case, or (``--ours-pred``) take the prediction ``evaluate_model.py`` already wrote."""
    if args.ours_pred is None:
        return run_ours(args, args.model, image, case_id, False)
    output = args.ours_pred / f"{case_id}.nii.gz"
    report = args.ours_pred / f"{case_id}.json"
    summary = args.ours_pred.parent / "results.json"
    per_case = json.loads(summary.read_text(encoding="utf-8"))["per_case"].get(case_id, {}) if summary.exists() else {}
    run = {
        "wall_s": per_case.get("wall_s"),
        "cpu_s": per_case.get("cpu_s"),
        **dict(zip(("peak_rss_mib", "peak_method"), stored_peak_mib(per_case), strict=True)),
        "report": json.loads(report.read_text(encoding="utf-8")) if report.exists() else None,
        "measured_at": f"by evaluate_model.py in {args.ours_pred.parent}",
    }
    return run, output


def run_blast_and_ours(args: argparse.Namespace, results: dict[str, Any]) -> None:
    import SimpleITK as sitk

    blast = not args.skip_blast
    if blast:
        results["blast_ct"] = {"members": [f"model_{i}.pt" for i in _member_numbers(args)]}
    if args.model is not None:
        manifest = json.loads((args.model / "manifest.json").read_text(encoding="utf-8"))
        results["ours"] = {"model": str(args.model), "weights_sha256": manifest["weights"]["sha256"]}
        results["ours"]["training"] = manifest.get("training", {}).get("notes")
        if args.ours_pred is not None:
            results["ours"]["predictions_from"] = str(args.ours_pred)
    if not args.skip_normal:
        if blast:
            blast_normal, _ = run_blast(args, args.ct, "normal_ct")
            volumes = blast_normal["report"]["volumes_ml"]
            results["blast_ct"]["normal_ct"] = {**_brief(blast_normal), "false_positive_ml": volumes}
            print(f"BLAST-CT normal CT: {blast_normal['wall_s']} s {volumes}", file=sys.stderr)
        if args.model is not None:
            ours_normal, _ = run_ours(args, args.model, args.ct, "normal_ct", False)
            classes = ours_normal["report"]["classes"]
            fp = {k: v["volume_ml"] for k, v in classes.items()}
            results["ours"]["normal_ct"] = {**_brief(ours_normal), "false_positive_ml": fp}
    if args.data is None or args.cases == 0:
        return
    blast_cases, ours_cases, ours_bhsd = {}, {}, {}
    chosen = held_out_cases(args.data, args.cases, args.case_ids)
    for case_id, image, labels in chosen:
        truth = sitk.ReadImage(str(labels))
        if blast:
            run, output = run_blast(args, image, case_id)
            blast_cases[case_id] = {**_brief(run), **mapped_scores(sitk.ReadImage(str(output)), truth, False)}
            print(f"BLAST-CT {case_id}: {run['wall_s']} s, {blast_cases[case_id]['dice']}", file=sys.stderr)
        if args.model is not None:
            from SlicerMedFuse.hemorrhage.evaluation import evaluate_pair

            run, output = ours_prediction(args, image, case_id)
            prediction = sitk.ReadImage(str(output))
            ours_cases[case_id] = {**_brief(run), **mapped_scores(prediction, truth, True)}
            ours_bhsd[case_id] = evaluate_pair(prediction, truth, case_id).dice
    listed = json.loads((args.data / "dataset.json").read_text(encoding="utf-8")).get("simulation", {})
    ids = {case_id for case_id, _, _ in chosen}
    seeds = {c["case"]: c["seed"] for c in listed.get("cases", {}).get("test", []) if c["case"] in ids}
    if blast_cases:
        results["blast_ct"]["held_out"] = {"cases": blast_cases, "seeds": seeds, "summary": summarise(blast_cases)}
    if ours_cases:
        results["ours"]["held_out"] = {"cases": ours_cases, "summary": summarise(ours_cases), "bhsd_dice": ours_bhsd}


def _cell(value: float | None, scale: float = 100.0) -> str:
    return "-" if value is None else f"{scale * value:.1f}"


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Hemorrhage peers: BLAST-CT and nnU-Net v2's predictor beside ours", ""]
    lines.append(f"Measured {results['date']} on {results['machine']}; {results['threads']} thread(s) per run; ")
    lines[-1] += "wall time and peak RSS of each run's own process (imports, model loading and I/O included; "
    lines[-1] += "peak = VmHWM read in that process by `benchmarks/harness.py`)."
    lines.append("")
    blast = results.get("blast_ct")
    if blast:
        members = ", ".join(blast["members"])
        lines += [f"## BLAST-CT ({members}; pretrained on real CT scans)", ""]
        if "normal_ct" in blast:
            lines += _normal_table(results)
        if "held_out" in blast:
            lines += _held_out_tables(results)
    timing = results.get("timing_512x512x40")
    if timing:
        arch = timing["architecture"]
        lines += ["## Inference on a 512 x 512 x 40 head CT: nnU-Net v2 predictor vs ours", ""]
        lines.append(
            f"Same network topology in both (features {arch['filters']}, patch {arch['patch_size_zyx']}, spacing "
            f"{arch['spacing_zyx']} mm z,y,x), random weights in nnU-Net's; ours: {timing['ours_model']}. "
            f"Overlap {results.get('overlap', 0.5)} (nnU-Net tile step {1 - results.get('overlap', 0.5):.2f}), "
            "Gaussian weighting in both"
            + (
                "; mirroring along our mirror axes (left-right) in both."
                if "mirroring" in timing
                else "; no mirroring."
            )
        )
        lines += [
            "",
            "Inner time: ours' sliding window alone; nnU-Net's `predict_from_files_sequential` (its preprocessing, ",
        ]
        lines[-1] += "sliding window and export). Wall and CPU time are the whole process."
        lines += [
            "",
            "| run | mirroring | wall (s) | CPU (s) | inner (s) | peak RSS (MiB) |",
            "|---|---|---|---|---|---|",
        ]
        for tag in ("no_mirroring", "mirroring"):
            if tag not in timing:
                continue
            for name in ("ours", "nnunet"):
                entry = timing[tag][name]
                inner = entry["timings_s"] or {}
                core = inner.get("network", inner.get("predict"))
                label = "ours (`medfuse run hemorrhage`)" if name == "ours" else "nnU-Net v2 `nnUNetPredictor`"
                lines.append(
                    f"| {label} | {'yes' if tag == 'mirroring' else 'no'} | {entry['wall_s']:.1f} | {entry.get('cpu_s')} | {core} | "
                    f"{peak_cell(entry)} |"
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def _normal_table(results: dict[str, Any]) -> list[str]:
    rows = [("BLAST-CT", results["blast_ct"]["normal_ct"])]
    if "normal_ct" in results.get("ours", {}):
        rows.append(("ours", results["ours"]["normal_ct"]))
    lines = ["### Real normal head CT: false positives (mL)", ""]
    lines += ["| model | false-positive volume per class (mL) | wall (s) | CPU (s) | peak RSS (MiB) |"]
    lines += ["|---|---|---|---|---|"]
    for name, entry in rows:
        volumes = ", ".join(f"{k} {v:.2f}" for k, v in entry["false_positive_ml"].items())
        cpu = "-" if entry.get("cpu_s") is None else f"{entry['cpu_s']:.0f}"
        lines.append(f"| {name} | {volumes} | {entry['wall_s']:.0f} | {cpu} | {peak_cell(entry)} |")
    return [*lines, ""]


def _mean_of(values: list[float | None], reduce: Any = None) -> str:
    """Mean (or ``reduce``) of the values, "-" when any is unknown."""
    if not values or any(v is None for v in values):
        return "-"
    return f"{(reduce(values) if reduce else sum(values) / len(values)):.0f}"


def _held_out_tables(results: dict[str, Any]) -> list[str]:
    blast = results["blast_ct"]["held_out"]
    rows = [("BLAST-CT", blast)]
    if "held_out" in results.get("ours", {}):
        rows.append(("ours", results["ours"]["held_out"]))
    n = len(blast["cases"])
    source = results.get("ours", {}).get("predictions_from")
    seeds = ", ".join(f"{k} (seed {v})" for k, v in blast.get("seeds", {}).items())
    lines = [f"### Held-out simulated cases ({n}): Dice (%) on BLAST-CT's classes", ""]
    lines += [f"Cases of {results.get('simulated_data')}: {seeds or ', '.join(blast['cases'])}.", ""]
    if source:
        lines += [f"Ours: predictions written by `evaluate_model.py` ({source}), scored here.", ""]
    lines += ["| model | IPH | IVH | EAH (EDH+SDH) | mean | wall s/case | CPU s/case | peak RSS (MiB, max) |"]
    lines += ["|---|---|---|---|---|---|---|---|"]
    for name, entry in rows:
        summary = entry["summary"]
        cases = list(entry["cases"].values())
        seconds = _mean_of([c["wall_s"] for c in cases])
        cpu = _mean_of([c.get("cpu_s") for c in cases])
        rss = peak_cell(max(cases, key=lambda c: stored_peak_mib(c)[0] or 0))
        dice = " | ".join(_cell(summary["dice"][k]["mean"]) for k in MAPPED_BHSD)
        lines.append(f"| {name} | {dice} | {_cell(summary['mean_dice'])} | {seconds} | {cpu} | {rss} |")
    lines += ["", "Per case: ground truth / predicted volume (mL) and Dice (%) per BLAST-CT class.", ""]
    lines += ["| model | case | IPH | IVH | EAH | oedema (mL) |", "|---|---|---|---|---|---|"]
    for name, entry in rows:
        for case_id, case in entry["cases"].items():
            cells = [
                f"{case['gt_ml'][k]:.1f} / {case['pred_ml'][k]:.1f} ({_cell(case['dice'][k])})" for k in MAPPED_BHSD
            ]
            oedema = case["pred_ml"].get("oedema")
            lines.append(f"| {name} | {case_id} | {' | '.join(cells)} | {'-' if oedema is None else f'{oedema:.1f}'} |")
    lines += ["", "### Detection rate per BHSD class (cases where the mapped class overlaps the bleed)", ""]
    lines += ["| model | EDH | IPH | IVH | SAH (any class) | SDH |", "|---|---|---|---|---|---|"]
    for name, entry in rows:
        detection = entry["summary"]["detection"]
        cells = " | ".join(f"{detection[k]['detected']}/{detection[k]['cases']}" for k in DETECTED_BY)
        lines.append(f"| {name} | {cells} |")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in WORKERS:
        return WORKERS[argv[0]](argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-python", required=True, type=Path, help="python of the benchmark venv (peers)")
    parser.add_argument("--blast-weights", type=Path, default=DEFAULT_BLAST, help="BLAST-CT config.json + model_*.pt")
    parser.add_argument("--blast-members", type=int, default=1, help="ensemble members used (BLAST-CT ships 7 here)")
    parser.add_argument("--data", type=Path, help="simulated dataset with imagesTs / labelsTs (held-out cases)")
    parser.add_argument("--cases", type=int, default=2, help="held-out bleed cases to run (the first ones)")
    parser.add_argument("--case-ids", nargs="+", help="these held-out cases instead of the first --cases")
    parser.add_argument("--ct", type=Path, default=DEFAULT_CT, help="real normal head CT")
    parser.add_argument("--model", type=Path, help="our bundle folder (default: random weights of the default plan)")
    parser.add_argument("--spacing", type=float, nargs=3, default=(2.0, 2.0, 3.0), help="spacing without --model")
    parser.add_argument("--work", required=True, type=Path, help="scratch folder (predictions, logs, records)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where hemorrhage_peers.{json,md} go")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ours-pred", type=Path, help="score ours from evaluate_model.py's OUT/pred instead")
    parser.add_argument("--overlap", type=float, default=0.5, help="sliding-window overlap, ours and nnU-Net's")
    parser.add_argument("--nnunet-mirroring", action="store_true", help="also time both with mirroring")
    parser.add_argument("--skip-blast", action="store_true", help="no BLAST-CT runs (ours still runs with --model)")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-normal", action="store_true", help="no runs on the real normal CT")
    parser.add_argument("--reuse", action="store_true", help="reuse runs already recorded in --work")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start",
        "threads": args.threads,
        "overlap": args.overlap,
        "simulated_data": str(args.data) if args.data else None,
    }
    if not args.skip_blast or args.model is not None:
        run_blast_and_ours(args, results)
    if not args.skip_timing:
        run_timing(args, results)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "hemorrhage_peers.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    (args.output / "hemorrhage_peers.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

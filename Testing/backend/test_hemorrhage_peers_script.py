"""The hemorrhage peers benchmark script: class mapping, detection, nnU-Net plans, and (with the bench venv) nnU-Net.

The peers (BLAST-CT, nnU-Net v2) live only in a separate benchmark venv; the test that runs
nnU-Net's predictor skips when ``MEDFUSE_BENCH_PYTHON`` (default ``/work/bench-venv-hem/bin/python``)
has no ``nnunetv2``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hemorrhage" / "run_peers.py"
BENCH_PYTHON = Path(os.environ.get("MEDFUSE_BENCH_PYTHON", "/work/bench-venv-hem/bin/python"))


@pytest.fixture(scope="module")
def peers():
    spec = importlib.util.spec_from_file_location("run_peers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing((1.0, 1.0, 2.0))  # 2 mm^3 per voxel
    return image


def test_mapped_scores_merge_edh_and_sdh_into_eah_and_count_detection(peers):
    truth = np.zeros((4, 10, 10), np.uint8)
    truth[0, :2, :2] = 1  # EDH
    truth[0, 5:, 5:] = 5  # SDH
    truth[2, :4, :4] = 2  # IPH
    truth[3, 8:, :] = 4  # SAH
    blast = np.zeros_like(truth)
    blast[0, :2, :2] = 2  # EAH on the EDH only
    blast[2, :2, :4] = 1  # half of the IPH
    blast[1, :, :] = 3  # oedema is never compared
    scores = peers.mapped_scores(_image(blast), _image(truth), prediction_is_bhsd=False)
    assert scores["dice"]["EAH"] == pytest.approx(2 * 4 / (4 + 4 + 25))
    assert scores["dice"]["IPH"] == pytest.approx(2 * 8 / (8 + 16))
    assert scores["dice"]["IVH"] is None
    assert scores["detected"] == {"EDH": True, "IPH": True, "IVH": None, "SAH": False, "SDH": False}
    assert scores["gt_ml"]["EAH"] == pytest.approx(29 * 0.002)
    ours = peers.mapped_scores(_image(truth), _image(truth), prediction_is_bhsd=True)
    assert ours["dice"]["EAH"] == pytest.approx(1.0)
    assert all(ours["detected"][k] for k in ("EDH", "IPH", "SDH"))
    summary = peers.summarise({"a": scores, "b": ours})
    assert summary["detection"]["SDH"] == {"detected": 1, "cases": 2}
    assert summary["dice"]["IVH"] == {"mean": None, "cases": 0}


def test_nnunet_plans_reproduce_bhsd_normalisation_and_our_topology(peers):
    arch = {
        "kernel_size": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "filters": [4, 8, 16],
        "patch_size_zyx": [16, 32, 32],
        "spacing_zyx": [3.0, 2.0, 2.0],
    }
    plans, dataset = peers._nnunet_plans(arch)
    config = plans["configurations"]["3d_fullres"]
    assert config["patch_size"] == [16, 32, 32] and config["spacing"] == [3.0, 2.0, 2.0]
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [4, 8, 16]
    stats = plans["foreground_intensity_properties_per_channel"]["0"]
    hu = np.array([-100.0, -40.0, 40.0, 120.0, 500.0])
    nnunet = (np.clip(hu, stats["percentile_00_5"], stats["percentile_99_5"]) - stats["mean"]) / stats["std"]
    np.testing.assert_allclose(nnunet, (np.clip(hu, -40, 120) - 40) / 80)
    assert dataset["labels"]["SDH"] == 5


def test_markdown_renders_every_section(peers):
    run = {
        "wall_s": 1.0,
        "peak_rss_mib": 2.0,
        "peak_method": "VmHWM",
        "timings_s": {"network": 0.5},
        "measured_at": "t",
        "load_1min": 1,
    }
    volumes = {"IPH": 1.0, "IVH": 0.0, "EAH": 2.0}
    case = {**run, "dice": {"IPH": 0.5, "IVH": None, "EAH": 0.25}, "gt_ml": volumes, "pred_ml": volumes}
    case["detected"] = dict.fromkeys(peers.DETECTED_BY, True)
    held = {"cases": {"c": case}, "summary": peers.summarise({"c": case})}
    results = {
        "date": "d",
        "machine": "m",
        "threads": 1,
        "blast_ct": {
            "members": ["model_1.pt"],
            "normal_ct": {**run, "false_positive_ml": {"IPH": 0.0}},
            "held_out": held,
        },
        "timing_512x512x40": {
            "ours_model": "x",
            "architecture": {"filters": [4], "patch_size_zyx": [1], "spacing_zyx": [1]},
            "no_mirroring": {"ours": run, "nnunet": {**run, "timings_s": {"predict": 0.7}}},
        },
    }
    text = peers.markdown(results)
    assert "| BLAST-CT | 50.0 | - | 25.0 | 37.5 | 1 | - | 2 |" in text
    assert "nnUNetPredictor" in text and "| 1/1 |" in text
    assert "| BLAST-CT | c | 1.0 / 1.0 (50.0) | 0.0 / 0.0 (-) | 2.0 / 2.0 (25.0) | - |" in text


def _has_nnunet() -> bool:
    if not BENCH_PYTHON.exists():
        return False
    probe = subprocess.run([str(BENCH_PYTHON), "-c", "import nnunetv2"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _has_nnunet(), reason="no benchmark venv with nnunetv2 (MEDFUSE_BENCH_PYTHON)")
def test_nnunet_predictor_runs_on_the_written_model_folder(tmp_path):
    arch = {
        "in_channels": 1,
        "out_channels": 6,
        "kernel_size": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "filters": [2, 4, 8],
        "patch_size_zyx": [8, 16, 16],
        "spacing_zyx": [2.0, 2.0, 2.0],
        "mirror_axes": [2],
    }
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    ct = sitk.GetImageFromArray(np.full((10, 20, 20), 40, np.int16))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [str(BENCH_PYTHON), str(SCRIPT)]
    subprocess.run([*run, "worker-nnunet-build", "--arch", str(tmp_path / "arch.json"), "--folder", str(tmp_path / "m")],
                   check=True, env=env, capture_output=True)  # fmt: skip
    subprocess.run([*run, "worker-nnunet-predict", "--folder", str(tmp_path / "m"), "--input", str(tmp_path / "ct.nii.gz"),
                    "--output", str(tmp_path / "p"), "--mirroring", "--report", str(tmp_path / "r.json")],
                   check=True, env=env, capture_output=True)  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mirroring_axes"] == [2] and report["threads"] == 1
    assert sitk.ReadImage(str(tmp_path / "p" / "nnunet.nii.gz")).GetSize() == (20, 20, 10)

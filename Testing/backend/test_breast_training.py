"""``medfuse train breast-mass`` on a phantom nnU-Net dataset, channel names, and the paper's metrics plus HD95."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.breast.evaluation import EvaluationResult, format_table, hd95_mm, score_case
from SlicerMedFuse.breast.phantom import PhantomConfig, study_geometry
from SlicerMedFuse.breast.phantom_dataset import write_phantom_dataset
from SlicerMedFuse.breast.training import BreastTrainingConfig
from SlicerMedFuse.breast.training_data import channel_roles
from SlicerMedFuse.errors import InputError, UsageError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("breast-phantom-dataset")
    grid = study_geometry(48, 6, (7.0, 7.0, 6.0))
    return write_phantom_dataset(root, 3, 1, grid=grid, config=PhantomConfig(mass_diameter_mm=(20.0, 30.0)), seed=50)


def test_dataset_layout_and_channel_names(dataset):
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "T1C", "1": "T2W", "2": "PRE"} and meta["simulated"] is True
    assert sorted(p.name for p in (dataset / "imagesTs").iterdir())[0] == "phantom_0053_0000.nii.gz"
    assert channel_roles({0: "T1C", 1: "T2W"}) == {"t1c": 0, "t2w": 1}
    assert channel_roles({0: "post", 1: "T2", 2: "pre-contrast"}) == {"t1c": 0, "t2w": 1, "pre": 2}
    with pytest.raises(InputError, match="no T1C channel"):
        channel_roles({0: "T2W"})
    with pytest.raises(InputError, match="name the channels T1C, T2W and PRE"):
        channel_roles({0: "T1C", 1: "FLAIR"})


def test_train_cli_writes_a_simulated_bundle_and_evaluates_it(dataset, tmp_path, capsys, small_torch_work):
    from SlicerMedFuse.cli import main

    argv = ["train", "breast-mass", "--data", str(dataset), "--output", str(tmp_path), "--architecture", "proposed"]
    argv += ["--width-divisor", "16", "--size", "48", "--epochs", "1", "--iterations", "2", "--lr", "1e-3"]
    argv += ["--subtraction", "--threads", "1", "--progress", "none", "--model-id", "tiny-breast"]
    assert main(argv) == 0
    bundle = tmp_path / "tiny-breast-0.1.0"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"] == "breast-mass" and manifest["training"]["simulated"] is True
    assert "phantom" in manifest["title"] and "Demonstration" in manifest["intended_use"]
    assert [i["role"] for i in manifest["inputs"]] == ["t1c", "t2w", "pre"]
    assert manifest["preprocessing"]["channels"] == ["t1c", "t2w", "subtraction"]
    assert manifest["architecture"]["args"]["features"] == [2, 4, 8, 16, 32]
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["cases"] == 1 and set(evaluation["per_case"][0]) >= {"dice", "sensitivity", "hd95_mm"}
    assert "| proposed |" in capsys.readouterr().out
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert len(log["history"]) == 1 and np.isfinite(log["history"][0]["loss"])


def test_training_settings_are_checked():
    with pytest.raises(UsageError, match="architecture must be one of"):
        BreastTrainingConfig(architecture="vnet")
    with pytest.raises(UsageError, match="width_divisor must divide"):
        BreastTrainingConfig(width_divisor=3)
    from SlicerMedFuse.breast.training import model_channels

    with pytest.raises(UsageError, match="has only T1C"):
        model_channels(BreastTrainingConfig(architecture="fuseunet"), ["t1c"])
    assert model_channels(BreastTrainingConfig(architecture="unet"), ["t1c", "t2w"]) == ("t1c",)


def _mask(array: np.ndarray, spacing=(1.0, 1.0, 2.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    return image


def test_metrics_on_known_shapes():
    truth = np.zeros((10, 40, 40), np.uint8)
    truth[3:7, 10:20, 10:20] = 1  # 400 voxels
    shifted = np.roll(truth, 4, axis=2)  # 4 voxels (4 mm) along x: 240 overlap
    scores = score_case(_mask(shifted), _mask(truth), "a")
    assert scores.dice == pytest.approx(100 * 2 * 240 / 800)
    assert scores.sensitivity == pytest.approx(100 * 240 / 400)
    assert scores.relative_area_difference == pytest.approx(0.0)
    assert scores.hd95_mm == pytest.approx(4.0)
    half = truth.copy()
    half[:, :, 15:] = 0  # half the mass predicted
    scores = score_case(_mask(half), _mask(truth), "b")
    assert scores.sensitivity == pytest.approx(50.0) and scores.relative_area_difference == pytest.approx(50.0)
    assert score_case(_mask(truth), _mask(truth)).hd95_mm == pytest.approx(0.0)
    assert hd95_mm(_mask(np.zeros_like(truth)), _mask(truth)) is None
    empty = score_case(_mask(truth), _mask(np.zeros_like(truth)), "c")
    assert empty.dice is None and empty.predicted_voxels == 400
    summary = EvaluationResult([scores, empty]).summary()
    assert summary["false_positive_cases"] == 1 and summary["dice"]["n"] == 1
    assert "| m | 66.7 ± 0.0 | 50.0 ± 0.0 | 50.0 ± 0.0 |" in format_table([("m", summary)])
    with pytest.raises(InputError, match="not on the grid"):
        score_case(_mask(truth, (1.0, 1.0, 3.0)), _mask(truth))

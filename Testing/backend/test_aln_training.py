"""``medfuse train aln-metastasis``: dataset layout and its checks, the loss falls, the CLI writes a loadable bundle."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from SlicerMedFuse.breast.aln_dataset import read_aln_dataset, write_simulated_dataset
from SlicerMedFuse.breast.aln_evaluation import roc_auc
from SlicerMedFuse.breast.aln_training import AlnTrainingConfig, AlnTrainingSet, _AlnStep
from SlicerMedFuse.errors import InputError, UsageError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_simulated_dataset(tmp_path_factory.mktemp("aln-dataset"), 4, 2, seed=300)


def test_layout_reads_back_with_splits_labels_and_simulated_flag(dataset):
    data = read_aln_dataset(dataset)
    assert (len(data.training), len(data.test)) == (4, 2) and data.simulated
    case = data.training[0]
    assert case.case_id == "aln_00300" and set(case.images) == {"dce", "t2w"} and case.mass is not None
    assert set(case.clinical) >= {"age", "grade", "ki67_percent"}
    assert json.loads((dataset / "dataset.json").read_text())["risk_model"]["rim"] == 2.0


def _rewrite(source, target, row_change=None, drop_column=None):
    shutil.copytree(source, target)
    with (source / "cases.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    if row_change:
        rows[1].update(row_change)
    columns = [c for c in rows[0] if c != drop_column]
    with (target / "cases.csv").open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.mark.parametrize(
    ("row_change", "drop_column", "fragment"),
    [
        ({"grade": "5"}, None, "'grade' in line 3 of cases.csv must be between 1 and 3; got 5"),
        ({"aln": "yes"}, None, "'aln' label of case 'aln_00301' .* must be 0 or 1"),
        ({"dce": "images/none.nii.gz"}, None, "dce image of case 'aln_00301' .* does not exist"),
        ({"her2": ""}, None, "clinical field 'her2' .* is missing in line 3 of cases.csv"),
        ({"split": "validation"}, None, "use 'train' or 'test'"),
        (None, "ki67_percent", "lacks the column"),
    ],
)
def test_bad_dataset_rows_are_named(dataset, tmp_path, row_change, drop_column, fragment):
    broken = _rewrite(dataset, tmp_path / "broken", row_change, drop_column)
    with pytest.raises(InputError, match=fragment):
        read_aln_dataset(broken)


def test_a_few_iterations_reduce_the_loss(small_torch_work):
    """On cases whose label shows in the DCE cube and in one clinical value, 15 steps lower the loss."""
    import torch

    from SlicerMedFuse.nets.registry import build_network

    rng = np.random.default_rng(0)
    labels = (np.arange(64) % 2).astype(np.float32)
    cubes = rng.standard_normal((64, 2, 32, 32, 32)).astype(np.float32)
    cubes[:, 0, 12:24, 12:24, 12:24] += 2.0 * labels[:, None, None, None]
    clinical = rng.standard_normal((64, 10)).astype(np.float32)
    clinical[:, 7] += 1.5 * labels
    data = AlnTrainingSet(cubes, np.ones((64, 2), bool), clinical, labels)
    config = AlnTrainingConfig(base_features=2, batch_size=8, shift_voxels=0)
    torch.manual_seed(0)
    network = build_network("medfuse.TransferModuleClassifier", config.network_args())
    step = _AlnStep(data, config, clinical, "cpu")
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-2)
    step_rng = np.random.default_rng(1)
    losses = []
    for iteration in range(15):
        loss, logs = step(network, iteration, step_rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        assert 0.0 <= logs["positive_share"] <= 1.0
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


def test_train_cli_writes_a_loadable_simulated_bundle_and_scores_it(dataset, tmp_path, capsys, small_torch_work):
    from SlicerMedFuse.api import run_task
    from SlicerMedFuse.cli import main
    from SlicerMedFuse.models.bundle import load_bundle

    argv = ["train", "aln-metastasis", "--data", str(dataset), "--output", str(tmp_path), "--base-features", "2"]
    argv += ["--epochs", "1", "--iterations", "2", "--batch-size", "4", "--threads", "1", "--progress", "none"]
    argv += ["--model-id", "tiny-aln", "--no-transfer-module"]
    assert main(argv) == 0
    bundle = tmp_path / "tiny-aln-0.1.0"
    loaded = load_bundle(bundle)
    manifest = loaded.manifest.to_dict()
    assert manifest["task"] == "aln-metastasis" and manifest["training"]["simulated"] is True
    assert "simulated ALN status" in manifest["title"] and "not for clinical use" in manifest["intended_use"]
    assert manifest["architecture"]["args"]["tm_after"] == [] and len(loaded.network.transfer) == 0
    clinical = manifest["preprocessing"]["clinical"]
    assert clinical["fields"][0] == "age" and len(clinical["mean"]) == 10 and min(clinical["std"]) > 0
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["cases"] == 2 and len(evaluation["per_case"]) == 2
    assert "held-out: 2 cases" in capsys.readouterr().out
    case = read_aln_dataset(dataset).test[0]
    report = run_task("aln-metastasis", {"dce": str(case.images["dce"])}, params=case.clinical, model=bundle).report
    assert 0.0 <= report["aln"]["probability"] <= 1.0
    assert main([*argv[:5], str(tmp_path / "again"), *argv[6:], "--no-evaluate"]) == 0  # same seed, same weights
    again = json.loads((tmp_path / "again" / "tiny-aln-0.1.0" / "manifest.json").read_text())
    assert again["weights"]["sha256"] == manifest["weights"]["sha256"]


def test_settings_and_auc_are_checked():
    with pytest.raises(UsageError, match="backbone"):
        AlnTrainingConfig(backbone="resnet50")
    with pytest.raises(UsageError, match="'dce' then optionally 't2w'"):
        AlnTrainingConfig(sequences=("t2w",))
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert np.isnan(roc_auc([0.1, 0.2], [True, True]))

"""BHSD evaluation (Dice per class, false positives, Table 1 layout, CLI) and the simulated dataset layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.cli import main
from SlicerMedFuse.errors import InputError
from SlicerMedFuse.hemorrhage.evaluation import evaluate_folders, evaluate_pair, format_table
from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset

from .hemorrhage_data import tiny_dataset


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing((1.0, 1.0, 10.0))  # 10 uL voxels
    return image


def _pair():
    truth = np.zeros((4, 10, 10), np.uint8)
    truth[0, :4, :5] = 2  # IPH, 20 voxels
    truth[2, :2, :5] = 5  # SDH, 10 voxels
    pred = truth.copy()
    pred[0, :4, 4] = 0  # IPH: 16 of 20 found -> Dice 32 / 36
    pred[2, :2, :5] = 0  # SDH missed -> Dice 0
    pred[3, 5:7, 5:7] = 1  # EDH absent from the truth: a false positive of 4 voxels
    return pred, truth


def test_dice_per_class_and_false_positives_of_one_case():
    pred, truth = _pair()
    scores = evaluate_pair(_image(pred), _image(truth), "c")
    assert scores.dice["IPH"] == pytest.approx(32 / 36) and scores.dice["SDH"] == 0.0
    assert scores.dice["EDH"] is None and scores.dice["IVH"] is None
    assert scores.false_positive == {"EDH": True, "IPH": False, "IVH": False, "SAH": False, "SDH": False}
    assert scores.fp_volume_ml["EDH"] == pytest.approx(0.04)
    with pytest.raises(InputError, match="different sizes"):
        evaluate_pair(_image(pred[:2]), _image(truth), "c")


def test_folders_give_the_bhsd_table_and_json(tmp_path, capsys):
    pred, truth = _pair()
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    for case, (p, t) in {
        "a": (pred, truth),
        "b": (truth, truth),
        "n": (np.zeros_like(truth), np.zeros_like(truth)),
    }.items():
        sitk.WriteImage(_image(p), str(tmp_path / "pred" / f"{case}.nii.gz"))
        sitk.WriteImage(_image(t), str(tmp_path / "gt" / f"{case}.nii.gz"))
    result = evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    assert result.dice["IPH"] == pytest.approx((32 / 36 + 1) / 2) and result.dice["SDH"] == pytest.approx(0.5)
    assert result.dice["EDH"] is None and result.mean_dice == pytest.approx((result.dice["IPH"] + 0.5) / 2)
    assert result.fp_rate["EDH"] == pytest.approx(1 / 3) and result.fp_per_case == pytest.approx(1 / 3)
    assert result.fp_rate["all"] == pytest.approx(1 / 11)  # 3 x 5 pairs, 4 with the class present
    table = format_table(result, "tiny")
    header, row, counts = table.splitlines()
    assert header.split() == ["EDH", "IPH", "IVH", "SAH", "SDH", "Mean", "FP", "rate", "FP/case"]
    assert row.split()[0] == "tiny" and row.split()[2] == f"{100 * result.dice['IPH']:.2f}"
    assert (
        main(["evaluate", "hemorrhage", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--json"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert printed["dice"]["SDH"] == pytest.approx(0.5) and "cases" not in printed
    (tmp_path / "pred" / "b.nii.gz").unlink()
    assert main(["evaluate", "hemorrhage", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]) == 3


def test_simulated_dataset_has_the_bhsd_layout_and_disjoint_seeds(tmp_path_factory, shared_data):
    root = tiny_dataset(tmp_path_factory, shared_data)
    data = read_nnunet_dataset(root)
    assert data.simulated and data.labels == {
        "background": 0, "epidural": 1, "intraparenchymal": 2, "intraventricular": 3, "subarachnoid": 4, "subdural": 5,
    }  # fmt: skip
    assert len(data.training) == 4 and len(data.test) == 2 and all(c.label is not None for c in data.test)
    cases = data.metadata["simulation"]["cases"]
    seeds = {split: {c["seed"] for c in cases[split]} for split in ("train", "test", "unlabelled")}
    assert not (seeds["train"] & seeds["test"]) and not (seeds["train"] & seeds["unlabelled"])
    no_bleed = [c for c in cases["train"] if not c["bleed"]]
    label = sitk.ReadImage(str(root / "labelsTr" / f"{no_bleed[0]['case']}.nii.gz"))
    assert not sitk.GetArrayViewFromImage(label).any()
    bleed = next(c for c in cases["train"] if c["bleed"])
    image = sitk.ReadImage(str(root / "imagesTr" / f"{bleed['case']}_0000.nii.gz"))
    labels = sitk.ReadImage(str(root / "labelsTr" / f"{bleed['case']}.nii.gz"))
    assert image.GetSize() == labels.GetSize() and labels.GetPixelID() == sitk.sitkUInt8
    blood = sitk.GetArrayViewFromImage(image)[sitk.GetArrayViewFromImage(labels) > 0]
    assert 30 < float(np.median(blood)) < 100  # acute blood density (HU), blended at the edges
    assert len(list(Path(root / "unlabelled").iterdir())) == 2

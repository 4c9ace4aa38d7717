"""Generalised hemorrhage training data (acquisition + anatomy randomised, hard negatives) and
``--pretrained``: the dataset records what each case was scanned with, the bundle states the
acquisitions it was trained on, and training can start from a bundle of the same network only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.hemorrhage.acquisition import TRAINING_ACQUISITIONS
from SlicerMedFuse.hemorrhage.simulated_dataset import SimulatedDatasetSpec, write_simulated_dataset
from SlicerMedFuse.hemorrhage.training import training_acquisition_range

from .hemorrhage_data import TINY_TRAINING, head_ct, tiny_bundle, tiny_dataset


@pytest.fixture(scope="module")
def randomised(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("randomised")
    spec = SimulatedDatasetSpec(
        bleed_train=2, no_bleed_train=2, bleed_test=0, no_bleed_test=0, seed=2, acquisitions=TRAINING_ACQUISITIONS
    )
    return write_simulated_dataset(head_ct(shared_data), root, spec, source_name="binned CT")


def test_every_case_records_its_scan_and_anatomy(randomised: Path) -> None:
    dataset = json.loads((randomised / "dataset.json").read_text(encoding="utf-8"))
    cases = dataset["simulation"]["cases"]["train"]
    assert [c["bleed"] for c in cases] == [True, True, False, False]  # bleed-free cases: hard negatives
    assert dataset["simulation"]["acquisitions"]["excluded"] == [18.0, 5.0]
    for case in cases:
        scan = case["acquisition"]
        assert (
            TRAINING_ACQUISITIONS.thickness_mm[0] <= scan["slice_thickness_mm"] <= TRAINING_ACQUISITIONS.thickness_mm[1]
        )
        assert set(case["anatomy"]) >= {"atrophy_mm", "calcifications", "head_holder"}
        image = sitk.ReadImage(str(randomised / "imagesTr" / f"{case['case']}_0000.nii.gz"))
        labels = sitk.ReadImage(str(randomised / "labelsTr" / f"{case['case']}.nii.gz"))
        assert image.GetSpacing()[2] == pytest.approx(scan["slice_spacing_mm"], rel=1e-3)  # the scan's own grid
        assert labels.GetSize() == image.GetSize()
        bled = np.count_nonzero(sitk.GetArrayViewFromImage(labels))
        assert (bled > 0) == case["bleed"]  # calcifications and the holder are never labelled


def test_rewriting_gives_the_same_cases(randomised: Path, tmp_path: Path, shared_data) -> None:
    spec = SimulatedDatasetSpec(
        bleed_train=2, no_bleed_train=0, bleed_test=0, no_bleed_test=0, seed=2, acquisitions=TRAINING_ACQUISITIONS
    )
    again = write_simulated_dataset(head_ct(shared_data), tmp_path / "again", spec)
    first = sitk.GetArrayFromImage(sitk.ReadImage(str(randomised / "imagesTr" / "sim_0000_0000.nii.gz")))
    second = sitk.GetArrayFromImage(sitk.ReadImage(str(again / "imagesTr" / "sim_0000_0000.nii.gz")))
    assert np.array_equal(first, second)


def test_training_acquisition_range_spans_the_training_cases(randomised: Path, tmp_path: Path) -> None:
    spans = training_acquisition_range(randomised)
    scans = [
        c["acquisition"]
        for c in json.loads((randomised / "dataset.json").read_text(encoding="utf-8"))["simulation"]["cases"]["train"]
    ]
    assert spans["slice_thickness_mm"] == [
        round(min(s["slice_thickness_mm"] for s in scans), 2),
        round(max(s["slice_thickness_mm"] for s in scans), 2),
    ]
    assert spans["tilt_deg"][0] >= 0
    assert set(spans) == {"slice_thickness_mm", "slice_spacing_mm", "tilt_deg", "inplane_mm", "untrained_corner"}
    assert spans["untrained_corner"] == {"tilt_deg": 18.0, "slice_thickness_mm": 5.0}
    assert training_acquisition_range(tmp_path) == {}  # no dataset.json: nothing stated


def test_training_starts_from_a_bundle_of_the_same_network(tmp_path_factory, shared_data, tmp_path) -> None:
    from safetensors.numpy import load_file

    from SlicerMedFuse.cli import main

    bundle = tiny_bundle(tmp_path_factory, shared_data)
    data = tiny_dataset(tmp_path_factory, shared_data)
    argv = ["train", "hemorrhage", "--data", str(data), "--epochs", "1", "--iterations", "1", *TINY_TRAINING]
    argv += ["--lr", "1e-12", "--model-id", "tiny-continued", "--pretrained", str(bundle)]
    assert main([*argv, "--output", str(tmp_path / "continued")]) == 0
    continued = tmp_path / "continued" / "tiny-continued-0.1.0"
    before, after = load_file(bundle / "model.safetensors"), load_file(continued / "model.safetensors")
    # AdamW at lr 1e-12 changes nothing visible: the run started from the bundle's weights
    assert all(np.allclose(before[name], after[name]) for name in before)
    manifest = json.loads((continued / "manifest.json").read_text(encoding="utf-8"))
    assert "started from the weights of tiny-hemorrhage-0.1.0" in manifest["training"]["notes"]


def test_pretrained_bundle_of_another_network_is_refused(tmp_path_factory, shared_data, tmp_path, capsys) -> None:
    from SlicerMedFuse.cli import main

    bundle = tiny_bundle(tmp_path_factory, shared_data)
    data = tiny_dataset(tmp_path_factory, shared_data)
    options = [o if o != "4,8,16,16" else "8,8,16,16" for o in TINY_TRAINING]
    argv = ["train", "hemorrhage", "--data", str(data), "--output", str(tmp_path / "x"), "--epochs", "1"]
    code = main([*argv, "--iterations", "1", *options, "--pretrained", str(bundle)])
    assert code != 0
    error = capsys.readouterr().err
    assert "--pretrained" in error and "Traceback" not in error

"""``medfuse demo`` steps: the hemorrhage step needs a CT and says so for an MRI sample; the breast step
segments a phantom study and the real breast crop, and says when the crop is missing."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.demo import DEMO_BLEED_SEED, DEMO_PHANTOM_SEED, DEMO_STEPS, _breast_step, _hemorrhage_step
from SlicerMedFuse.io import write_image
from SlicerMedFuse.progress import Progress


def test_every_task_with_a_sample_has_a_demo_step():
    assert [step.name for step in DEMO_STEPS] == ["superres", "hemorrhage", "breast"]
    assert DEMO_BLEED_SEED >= 6000  # outside the demo model's training (0-59) and held-out (5000-5029) seeds
    assert DEMO_PHANTOM_SEED >= 6000


def test_hemorrhage_step_skips_an_mri_sample_and_writes_nothing(tmp_path):
    mri = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 800, (8, 16, 16)).astype(np.float32))
    scan = tmp_path / "t1.nii.gz"
    write_image(mri, scan)
    folder = tmp_path / "hemorrhage"
    folder.mkdir()
    outcome = _hemorrhage_step(scan, folder, Progress())
    assert "not a CT" in outcome["skipped"]
    assert list(folder.iterdir()) == []


def test_breast_step_segments_the_phantom_study_and_the_real_crop(tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("MEDFUSE_BREAST_SAMPLE", str(shared_data / "breast_mri"))
    outcome = _breast_step(tmp_path / "unused.nii.gz", tmp_path, Progress())
    # The phantom study is the demo model's own domain (T1C + T2W): it finds the mass.
    assert outcome["phantom"]["inputs"] == ["t1c", "t2w"]
    assert outcome["phantom"]["dice_percent"] > 70.0
    # The real crop has one sequence; the step runs and scores it, whatever the phantom-trained model finds.
    assert outcome["real_crop"]["inputs"] == ["t1c"]
    assert outcome["real_crop"]["truth_voxels"] == 143
    assert 0.0 <= outcome["real_crop"]["dice_percent"] <= 100.0
    assert (tmp_path / "real_crop_mass.nii.gz").is_file() and (tmp_path / "preview.png").is_file()
    assert "phantoms" in outcome["note"]


def test_breast_step_says_when_the_real_crop_is_missing(tmp_path, monkeypatch):
    import SlicerMedFuse.demo as demo

    monkeypatch.setattr(demo, "breast_sample_folder", lambda: None)
    outcome = _breast_step(tmp_path / "unused.nii.gz", tmp_path, Progress())
    assert "MEDFUSE_BREAST_SAMPLE" in outcome["real_crop"]["skipped"]
    assert outcome["phantom"]["dice_percent"] > 70.0


def test_demo_command_lists_a_skipped_step(tmp_path, shared_data, monkeypatch, capsys):
    from SlicerMedFuse.cli.main import main

    monkeypatch.setenv("MEDFUSE_BREAST_SAMPLE", str(shared_data / "breast_mri"))
    mri = sitk.GetImageFromArray(np.random.default_rng(1).uniform(0, 800, (6, 24, 24)).astype(np.float32))
    mri.SetSpacing((1.0, 1.0, 4.0))
    scan = tmp_path / "t1.nii.gz"
    write_image(mri, scan)
    assert main(["demo", "--input", str(scan), "--output", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "hemorrhage: skipped, the sample scan is not a CT" in printed
    assert "breast: preview" in printed and "superres: preview" in printed

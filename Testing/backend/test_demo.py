"""``medfuse demo`` steps: the hemorrhage step needs a CT and says so for an MRI sample."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.demo import DEMO_BLEED_SEED, DEMO_STEPS, _hemorrhage_step
from SlicerMedFuse.io import write_image
from SlicerMedFuse.progress import Progress


def test_every_task_with_a_sample_has_a_demo_step():
    assert [step.name for step in DEMO_STEPS] == ["superres", "hemorrhage"]
    assert DEMO_BLEED_SEED >= 6000  # outside the demo model's training (0-59) and held-out (5000-5029) seeds


def test_hemorrhage_step_skips_an_mri_sample_and_writes_nothing(tmp_path):
    mri = sitk.GetImageFromArray(np.random.default_rng(0).uniform(0, 800, (8, 16, 16)).astype(np.float32))
    scan = tmp_path / "t1.nii.gz"
    write_image(mri, scan)
    folder = tmp_path / "hemorrhage"
    folder.mkdir()
    outcome = _hemorrhage_step(scan, folder, Progress())
    assert "not a CT" in outcome["skipped"]
    assert list(folder.iterdir()) == []

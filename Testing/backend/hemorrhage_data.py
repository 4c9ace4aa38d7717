"""Tiny hemorrhage data shared by the task and training tests, built once per test session.

The dataset is simulated in the real head CT binned to 1.9 x 1.9 x 3 mm (128 x 128 x 54) so that
simulation, preprocessing and a few training iterations take seconds; the bundle is a small
U-Net trained a few iterations on it through the real ``medfuse train hemorrhage`` path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from SlicerMedFuse.hemorrhage.simulated_dataset import SimulatedDatasetSpec, write_simulated_dataset

#: CLI options of a network that trains and infers in seconds on CPU.
TINY_TRAINING = [
    "--spacing", "4,4,6", "--patch", "16,32,32", "--filters", "4,8,16,16", "--optimizer", "adamw",
    "--lr", "3e-3", "--threads", "1", "--progress", "none", "--foreground", "0.9",
]  # fmt: skip


def head_ct(shared_data: Path) -> sitk.Image:
    """The real head CT binned 2 x 2 x 2 (int16 HU)."""
    image = sitk.ReadImage(str(shared_data / "head_ct" / "invesalius_ct0051_head.nii.gz"))
    return sitk.Cast(sitk.BinShrink(image, [2, 2, 2]), sitk.sitkInt16)


def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """3 bleed + 1 no-bleed training cases, 2 held-out cases, 2 unlabelled cases (nnU-Net layout)."""
    root = tmp_path_factory.getbasetemp() / "hemorrhage-tiny-dataset"
    if not (root / "dataset.json").is_file():
        spec = SimulatedDatasetSpec(bleed_train=3, no_bleed_train=1, bleed_test=1, no_bleed_test=1, unlabelled=2)
        write_simulated_dataset(head_ct(shared_data), root, spec, source_name="invesalius_ct0051 binned 2x2x2")
    return root


def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A bundle trained 2 epochs x 3 iterations on :func:`tiny_dataset` with ``medfuse train hemorrhage``."""
    from SlicerMedFuse.cli import main

    output = tmp_path_factory.getbasetemp() / "hemorrhage-tiny-training"
    bundle = output / "tiny-hemorrhage-0.1.0"
    if not (bundle / "manifest.json").is_file():
        data = tiny_dataset(tmp_path_factory, shared_data)
        argv = [
            "train",
            "hemorrhage",
            "--data",
            str(data),
            "--output",
            str(output),
            "--epochs",
            "2",
            "--iterations",
            "3",
        ]
        assert main([*argv, *TINY_TRAINING, "--model-id", "tiny-hemorrhage"]) == 0
    return bundle

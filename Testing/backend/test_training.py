"""Training: nnU-Net dataset reading, checkpoints without pickle, patch sampling, the hemorrhage recipe
(loss goes down, resume, Cross Pseudo Supervision, bundle) and DDP with 2 CPU processes on gloo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.cli import main
from SlicerMedFuse.errors import InputError
from SlicerMedFuse.models.bundle import load_bundle
from SlicerMedFuse.training.nnunet_dataset import read_nnunet_dataset
from SlicerMedFuse.training.patch_sampler import CaseArrays, PatchSampler, index_foreground

from .hemorrhage_data import TINY_TRAINING, tiny_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, shared_data):
    return tiny_dataset(tmp_path_factory, shared_data)


def _write(path: Path, array: np.ndarray) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


def test_reads_bhsd_v1_dataset_json_and_reports_missing_files(tmp_path):
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        (tmp_path / folder).mkdir()
    for case in ("ID_a", "ID_b"):
        _write(tmp_path / "imagesTr" / f"{case}_0000.nii.gz", np.zeros((2, 3, 4), np.int16))
        _write(tmp_path / "labelsTr" / f"{case}.nii.gz", np.zeros((2, 3, 4), np.uint8))
    _write(tmp_path / "imagesTs" / "ID_c_0000.nii.gz", np.zeros((2, 3, 4), np.int16))
    bhsd = {  # the official BHSD dataset.json fields (nnU-Net v1 style)
        "modality": {"0": "CT"},
        "labels": {"0": "background", "1": "epidural", "2": "intraparenchymal", "3": "intraventricular",
                   "4": "subarachnoid", "5": "subdural"},
        "numTraining": 2,
        "numTest": 1,
    }  # fmt: skip
    (tmp_path / "dataset.json").write_text(json.dumps(bhsd))
    data = read_nnunet_dataset(tmp_path)
    assert data.channel_names == {0: "CT"} and data.labels["subdural"] == 5
    assert [c.case_id for c in data.training] == ["ID_a", "ID_b"] and data.training[0].label.name == "ID_a.nii.gz"
    assert [c.case_id for c in data.test] == ["ID_c"] and data.test[0].label is None
    (tmp_path / "labelsTr" / "ID_b.nii.gz").unlink()
    with pytest.raises(InputError, match="ID_b"):
        read_nnunet_dataset(tmp_path)
    with pytest.raises(InputError, match="dataset.json"):
        read_nnunet_dataset(tmp_path / "imagesTr")


def test_checkpoint_round_trip_restores_model_and_optimizer_without_pickle(tmp_path, small_torch_work):
    import torch

    from SlicerMedFuse.training.checkpoint import load_checkpoint, save_checkpoint

    for make in (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        lambda p: torch.optim.AdamW(p, lr=0.01),
    ):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        optimizer = make(model.parameters())
        for _ in range(3):
            optimizer.zero_grad()
            model(torch.randn(5, 4)).pow(2).sum().backward()
            optimizer.step()
        folder = save_checkpoint(tmp_path / "latest", model, optimizer, {"epoch": 2, "history": [1, 2]})
        assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors", "optimizer.safetensors", "state.json"]
        clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
        clone_optimizer = make(clone.parameters())
        state = load_checkpoint(folder, clone, clone_optimizer)
        assert state["epoch"] == 2 and "optimizer" not in state
        for a, b in zip(model.state_dict().values(), clone.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        x = torch.randn(5, 4)
        for m, o in ((model, optimizer), (clone, clone_optimizer)):  # the next step is identical
            o.zero_grad()
            m(x).pow(2).sum().backward()
            o.step()
        for a, b in zip(model.parameters(), clone.parameters(), strict=True):
            assert torch.allclose(a, b)


def test_patch_sampler_pads_and_oversamples_foreground():
    image = np.random.default_rng(0).uniform(-1, 1, (1, 10, 20, 20)).astype(np.float32)
    labels = np.zeros((10, 20, 20), np.uint8)
    labels[1, 1, 1] = 3
    case = CaseArrays("a", image, labels, index_foreground(labels))
    sampler = PatchSampler([case], (8, 16, 16), foreground_probability=1.0)
    images, patches = sampler.sample(4, np.random.default_rng(1))
    assert images.shape == (4, 1, 8, 16, 16) and patches.shape == (4, 1, 8, 16, 16)
    assert all((p == 3).sum() == 1 for p in patches)  # centred on the only foreground voxel
    assert images.min() >= image.min()  # padding uses the channel minimum
    crop, _ = sampler.crop(0, (0, 0, 0))
    assert np.all(crop[0, :4, :8, :8] == image.min())


def test_class_balanced_sampling_centres_rare_classes_as_often_as_common_ones():
    image = np.zeros((1, 8, 16, 16), np.float32)
    cases = []
    for n in range(10):  # class 2 in every case, class 1 in one case only
        labels = np.zeros((8, 16, 16), np.uint8)
        labels[4, 8, 8] = 2
        if n == 0:
            labels[2, 2, 2] = 1
        cases.append(CaseArrays(str(n), image, labels, index_foreground(labels)))
    rng = np.random.default_rng(0)
    per_case = PatchSampler(cases, (1, 1, 1), foreground_probability=1.0)
    balanced = PatchSampler(cases, (1, 1, 1), foreground_probability=1.0, class_balanced=True)
    rare_per_case = np.mean(per_case.sample(2000, rng)[1] == 1)
    rare_balanced = np.mean(balanced.sample(2000, rng)[1] == 1)
    assert rare_per_case < 0.1 and 0.4 < rare_balanced < 0.6
    uniform = PatchSampler(cases, (1, 1, 1), foreground_probability=0.0, class_balanced=True)
    assert np.mean(uniform.sample(500, rng)[1] > 0) < 0.05


def test_training_reduces_the_loss_resumes_and_writes_a_simulated_bundle(dataset, tmp_path, small_torch_work):
    output = tmp_path / "run"
    argv = ["train", "hemorrhage", "--data", str(dataset), "--output", str(output), "--iterations", "6", *TINY_TRAINING]
    assert main([*argv, "--epochs", "2", "--model-id", "t"]) == 0
    first = json.loads((output / "training_log.json").read_text(encoding="utf-8"))
    assert [h["epoch"] for h in first["history"]] == [0, 1]
    assert main([*argv, "--epochs", "4", "--model-id", "t", "--resume"]) == 0
    log = json.loads((output / "training_log.json").read_text(encoding="utf-8"))
    losses = [h["loss"] for h in log["history"]]
    assert log["resumed_from"] == 2 and len(losses) == 4 and losses[:2] == [h["loss"] for h in first["history"]]
    assert losses[-1] < losses[0]
    assert len(log["cases"]["bleed"]) == 3 and len(log["cases"]["no_bleed"]) == 1
    manifest = json.loads((output / "t-0.1.0" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["training"]["simulated"] is True and "not for clinical use" in manifest["intended_use"]
    assert manifest["preprocessing"]["spacing_mm"] == [4.0, 4.0, 6.0]
    assert manifest["architecture"]["name"] == "medfuse.HemorrhageUNet"
    assert load_bundle(output / "t-0.1.0").manifest.simulated_training


def test_multi_window_and_cross_pseudo_supervision_train(dataset, tmp_path, small_torch_work):
    output = tmp_path / "cps"
    argv = [
        "train",
        "hemorrhage",
        "--data",
        str(dataset),
        "--output",
        str(output),
        "--epochs",
        "1",
        "--iterations",
        "2",
    ]
    argv += ["--architecture", "multi-window", "--stem-channels", "2", "--unlabelled", str(dataset / "unlabelled")]
    assert main([*argv, *TINY_TRAINING, "--model-id", "cps"]) == 0
    log = json.loads((output / "training_log.json").read_text(encoding="utf-8"))
    assert {"cps", "supervised"} <= set(log["history"][0]) and len(log["unlabelled"]) == 2
    loaded = load_bundle(output / "cps-0.1.0")
    assert loaded.manifest.architecture == "medfuse.MultiWindowHemorrhageUNet"
    assert [w["name"] for w in loaded.manifest.preprocessing["windows"]] == ["brain", "subdural", "bone"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_distributed_training_with_two_gloo_processes(dataset, tmp_path):
    output = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), "-m", "SlicerMedFuse", "train", "hemorrhage", "--data", str(dataset),
        "--output", str(output), "--epochs", "1", "--iterations", "2", "--device", "cpu", *TINY_TRAINING,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("bundle:") == 1  # only rank 0 writes the bundle
    log = json.loads((output / "training_log.json").read_text(encoding="utf-8"))
    assert "2 process(es)" in log["manifest"]["training"]["notes"]
    assert load_bundle(output / "medfuse-hemorrhage-0.1.0").network is not None

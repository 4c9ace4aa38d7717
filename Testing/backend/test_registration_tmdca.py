"""TM-DCA (deformable cross-attention registration network): forward pass, parameter count, deformable
sampling, training on a tiny Learn2Reg-style dataset from the real brain scans (loss goes down,
resume, bundle), and test-time instance optimisation started from the learned model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SlicerMedFuse.cli import main
from SlicerMedFuse.nets import build_network
from SlicerMedFuse.nets.registration.deformable_cross_attention import sample_reference
from SlicerMedFuse.nets.registration.tm_dca import TransMorphDCA, parameter_count

#: A small TM-DCA for CPU tests (the paper's configuration is the default).
TINY = ["--embed-dim", "24", "--depths", "1,1,1", "--heads", "2,2,2", "--time-steps", "2", "--window", "2,2,2"]
TINY_GRID = "16,32,32"  # network grid D,H,W


def test_forward_pass_gives_a_voxel_field_of_the_input_shape(small_torch_work):
    torch.manual_seed(0)
    network = TransMorphDCA().eval()  # the paper's configuration
    fixed, moving = torch.rand(1, 1, 16, 20, 24), torch.rand(1, 1, 16, 20, 24)  # not multiples of 16: padded inside
    with torch.no_grad():
        field = network(fixed, moving)
    assert field.shape == (1, 3, 16, 20, 24) and torch.isfinite(field).all()
    assert field.abs().max() < 0.05  # the heads start near zero (official init N(0, 1e-5))
    with pytest.raises(ValueError, match="same shape|one shape"):
        network(fixed, moving[..., :-1])


def test_parameter_count_of_the_paper_configuration():
    network = TransMorphDCA()
    # Exact count of patch 4, embed 96, depths (4, 4, 5), heads 8, windows (5, 6, 7), offset kernels (7, 5, 3),
    # 12 time steps; tolerance 0: any change of the architecture must be deliberate.
    assert parameter_count(network) == 29_638_908
    # The notes' "~15.2 M" is the TransMorph template docstring copied into the official config; it cannot hold
    # for this architecture: the last stage's two-path attention and MLP weights alone exceed it (documented in tm_dca).
    last = network.encoder.stages[-1]
    attention_mlp = sum(
        p.numel()
        for name, p in last.named_parameters()
        if ".attn." in name or ".mlp." in name and "offsets" not in name
    )
    assert attention_mlp > 15.2e6
    assert build_network("medfuse.TransMorphDCA", {"depths": [1, 1, 1], "embed_dim": 24, "num_heads": [2, 2, 2]})


def test_deformable_sampling_reads_each_head_at_its_own_offset():
    reference = torch.arange(2 * 4 * 5 * 6 * 7, dtype=torch.float32).reshape(2, 4, 5, 6, 7)
    offsets = torch.zeros(2, 2, 3, 5, 6, 7)
    offsets[:, 1, 2] = 1.0  # head 1 (channels 2, 3) reads one token further along W
    sampled = sample_reference(reference, offsets)
    assert torch.allclose(sampled[:, :2], reference[:, :2], atol=1e-3)
    assert torch.allclose(sampled[:, 2:, ..., :-1], reference[:, 2:, ..., 1:], atol=1e-3)
    assert sampled[:, 2:, ..., -1].abs().max() < 1e-3  # outside the map: zeros


def _tiny_learn2reg(root: Path, shared_data: Path) -> Path:
    """Two real brain MRIs (different patients) with their tumour masks, shrunk to 32x32x16, Learn2Reg layout."""
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True)
    size = (32, 32, 16)
    entries = []
    for index, name in enumerate(("brain1", "brain2")):
        image = sitk.ReadImage(str(shared_data / "brain_registration" / f"pyradiomics_{name}_image.nrrd"))
        label = sitk.ReadImage(str(shared_data / "brain_registration" / f"pyradiomics_{name}_label.nrrd"))
        spacing = [s * n / m for s, n, m in zip(image.GetSpacing(), image.GetSize(), size, strict=True)]
        smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), [3.0, 3.0, 3.0])
        for source, interpolator, folder in (
            (smooth, sitk.sitkLinear, "imagesTr"),
            (label, sitk.sitkNearestNeighbor, "labelsTr"),
        ):
            small = sitk.Resample(
                source, size, sitk.Transform(), interpolator, image.GetOrigin(), spacing, image.GetDirection()
            )
            sitk.WriteImage(small, str(root / folder / f"BRAIN_{index:04d}_0000.nii.gz"))
        entries.append(f"./imagesTr/BRAIN_{index:04d}_0000.nii.gz")
    dataset = {
        "name": "tiny-brains",
        "modality": {"0": "MR"},
        "training": [{"image": e, "label": e.replace("imagesTr", "labelsTr")} for e in entries],
        "training_paired_images": [{"fixed": entries[0], "moving": entries[1]}],
    }
    (root / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    """A tiny TM-DCA trained for 2 + 1 (resumed) epochs on one real pair; returns (dataset, output, bundle)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = _tiny_learn2reg(tmp_path_factory.mktemp("l2r"), shared_data)
        output = tmp_path_factory.mktemp("run")
        argv = ["train", "registration", "--data", str(data), "--output", str(output), "--shape", TINY_GRID, *TINY]
        argv += ["--iterations", "4", "--lr", "1e-3", "--device", "cpu", "--model-id", "tiny-tmdca"]
        assert main([*argv, "--epochs", "2"]) == 0
        assert main([*argv, "--epochs", "3", "--resume"]) == 0
    finally:
        torch.set_num_threads(threads)
    return data, output, output / "tiny-tmdca-0.1.0"


def test_training_reduces_the_loss_resumes_and_writes_a_bundle_that_loads(trained, small_torch_work):
    from SlicerMedFuse.registration.learned import load_registration_model
    from SlicerMedFuse.registration.training import PairLoss, RegistrationTrainingConfig
    from SlicerMedFuse.registration.training_data import load_volumes, read_registration_dataset

    data, output, bundle_folder = trained
    log = json.loads((output / "training_log.json").read_text(encoding="utf-8"))
    assert log["resumed_from"] == 2 and [h["epoch"] for h in log["history"]] == [0, 1, 2]
    assert {"similarity", "regularizer", "dice_loss"} <= set(log["history"][0])
    bundle = load_registration_model(bundle_folder)
    manifest = bundle.manifest
    assert manifest.task == "registration" and manifest.architecture == "medfuse.TransMorphDCA"
    assert manifest.preprocessing["input_shape_zyx"] == [16, 32, 32] and manifest.architecture_args["time_steps"] == 2
    # the training pair's loss with the initial weights (same seed) and with the trained ones
    dataset = read_registration_dataset(data)
    volumes = load_volumes(dataset, (16, 32, 32), with_labels=True)
    loss = PairLoss(RegistrationTrainingConfig(), len(volumes.label_values) + 1)
    fixed_index, moving_index = dataset.pairs[0]
    images = torch.from_numpy(volumes.images)
    labels = torch.from_numpy(volumes.labels)
    torch.manual_seed(0)
    initial = build_network(manifest.architecture, manifest.architecture_args).eval()
    values = []
    for network in (initial, bundle.network):
        with torch.no_grad():
            fixed, moving = images[fixed_index : fixed_index + 1], images[moving_index : moving_index + 1]
            field = network(fixed, moving)
            values.append(
                float(
                    loss(
                        fixed,
                        moving,
                        field,
                        labels[fixed_index : fixed_index + 1],
                        labels[moving_index : moving_index + 1],
                    )[0]
                )
            )
    assert values[1] < values[0] - 1e-3, values


def test_training_without_dataset_json_fails_with_one_sentence_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "imagesTr").mkdir()
    output = tmp_path / "run"
    code = main(["train", "registration", "--data", str(tmp_path), "--output", str(output), "--progress", "none"])
    assert code != 0 and "dataset.json" in capsys.readouterr().err
    assert not output.exists()


def test_pipeline_starts_from_an_initial_displacement_exactly(trained, small_torch_work):
    from SlicerMedFuse.registration.pipeline import register
    from SlicerMedFuse.registration.presets import load_preset

    data = trained[0]
    fixed = sitk.ReadImage(str(data / "imagesTr" / "BRAIN_0000_0000.nii.gz"))
    moving = sitk.ReadImage(str(data / "imagesTr" / "BRAIN_0001_0000.nii.gz"))
    first = register(fixed, moving, load_preset("fast") | {"iterations": [4, 4, 4]})
    # no deformable iterations on one full-resolution level: the result must be the initial field itself,
    # whatever the new linear stage finds (the field is re-expressed after it)
    again = register(
        fixed,
        moving,
        load_preset("fast") | {"levels": 1, "iterations": [0], "finest_scale": 1.0},
        initial_displacement=first.displacement,
    )
    difference = sitk.GetArrayFromImage(again.displacement) - sitk.GetArrayFromImage(first.displacement)
    assert np.abs(difference).max() < 1e-3


def test_learned_initialisation_then_instance_optimisation(trained, small_torch_work):
    from SlicerMedFuse.models import LoadedBundle
    from SlicerMedFuse.registration.learned import (
        load_registration_model,
        network_geometry,
        predict_displacement,
        register_with_model,
    )
    from SlicerMedFuse.registration.presets import load_preset

    data, _, bundle_folder = trained
    fixed = sitk.ReadImage(str(data / "imagesTr" / "BRAIN_0000_0000.nii.gz"))
    moving = sitk.ReadImage(str(data / "imagesTr" / "BRAIN_0001_0000.nii.gz"))
    bundle = load_registration_model(bundle_folder)

    class OneVoxelAlongI(torch.nn.Module):  # stands in for the network: u = +1 voxel along the grid's i axis
        def forward(self, fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
            field = torch.zeros(1, 3, *fixed.shape[2:])
            field[:, 0] = 1.0
            return field

    identity = sitk.AffineTransform(3)
    field = predict_displacement(LoadedBundle(bundle.manifest, OneVoxelAlongI()), fixed, moving, identity)
    grid = network_geometry(fixed, (16, 32, 32), bundle.manifest.preprocessing["orientation"])
    expected = grid.direction_matrix[:, 0] * grid.spacing[0]  # one network voxel along i, in LPS mm
    centre = sitk.GetArrayFromImage(field)[4:12, 8:24, 8:24].reshape(-1, 3)
    assert np.allclose(centre, expected, atol=1e-4)

    result = register_with_model(fixed, moving, load_preset("fast") | {"iterations": [5, 5, 5]}, model=bundle)
    assert result.report["learned_initialization"]["model"] == "tiny-tmdca-0.1.0"
    assert result.displacement.GetSize() == fixed.GetSize()
    assert np.isfinite(sitk.GetArrayFromImage(result.displacement)).all()
    assert result.report["similarity"]["after"] > result.report["similarity"]["before"]


def test_registration_task_uses_a_model_bundle_when_given(trained, small_torch_work):
    from SlicerMedFuse.api import run_task

    data, _, bundle_folder = trained
    images = {role: data / "imagesTr" / f"BRAIN_000{i}_0000.nii.gz" for i, role in enumerate(("fixed", "moving"))}
    result = run_task("registration", images, params={"iterations": "3,3,3"}, device="cpu", model=bundle_folder)
    assert result.report["learned_initialization"]["model"] == "tiny-tmdca-0.1.0"

"""Task ``breast-mass``: contract, phases, roles, registration checks, missing T2W, attention maps, 2D and 3D bundles."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.breast.labels import MASS_LABEL
from SlicerMedFuse.breast.model_input import BreastPreprocessing
from SlicerMedFuse.breast.phantom import PhantomConfig, generate_phantom, study_geometry
from SlicerMedFuse.breast.training import BreastTrainingConfig, bundle_manifest, network_definition
from SlicerMedFuse.errors import InputError, ModelError, UsageError
from SlicerMedFuse.specs.breast_mass import SPEC
from SlicerMedFuse.tasks.registry import get_task

GRID = study_geometry(64, 12, (5.0, 5.0, 4.0))


@pytest.fixture(scope="module")
def study():
    return generate_phantom(21, GRID, PhantomConfig(masses=(1, 1), mass_diameter_mm=(20.0, 25.0)))


def _bundle(folder, architecture="proposed", channels=("t1c", "t2w"), spatial_dims=2):
    """An untrained small bundle (pipeline tests need shapes, not skill)."""
    import torch

    from SlicerMedFuse.models.bundle import save_bundle
    from SlicerMedFuse.nets.registry import build_network

    config = BreastTrainingConfig(
        architecture=architecture, width_divisor=16, in_plane_size=32, model_id=f"tiny-{architecture}"
    )
    name, args = network_definition(config, channels)
    if spatial_dims == 3:
        name, args = (
            "medfuse.BreastMasterAssistantUNet3d",
            {"num_modalities": len(channels), "features": [2, 4, 8, 16, 16]},
        )
    prep = BreastPreprocessing(
        channels=channels,
        spatial_dims=spatial_dims,
        in_plane_size=32,
        spacing_mm=(6.0, 6.0, 6.0),
        patch_zyx=(16, 32, 32),
    )
    manifest = bundle_manifest(prep, (name, args), config, "tiny phantom set", True, "untrained", "test")
    torch.manual_seed(0)
    return save_bundle(build_network(name, args), manifest, folder)


@pytest.fixture(scope="module")
def proposed(tmp_path_factory):
    return _bundle(tmp_path_factory.mktemp("breast-bundles"))


def test_spec_roles_outputs_labels_and_registry():
    spec = get_task("breast-mass").spec
    assert [(i.role, i.required) for i in spec.inputs] == [("t1c", True), ("t2w", False), ("pre", False)]
    assert spec.primary_output.role == "mass" and spec.primary_output.reference_role == "t1c"
    assert [o.role for o in spec.outputs][1:] == [f"attention_{k}" for k in range(1, 6)]
    assert spec.labels == (MASS_LABEL,) and MASS_LABEL.name == "Mass" and MASS_LABEL.value == 1
    entry = MASS_LABEL.terminology.to_slicer_entry()
    assert "SCT^4147007^Mass" in entry and "SCT^76752008^Breast" in entry
    params = spec.resolve_parameters({"phase": "2", "attention_maps": "yes"})
    assert params["phase"] == 2 and params["attention_maps"] is True and params["pre_phase"] is None
    assert spec.needs_model and SPEC.default_model == "medfuse-breast-mass-demo"


def test_runs_with_all_sequences_and_writes_label_and_attention(study, proposed, tmp_path, small_torch_work):
    images = dict(study.images)
    outputs = {"mass": tmp_path / "mass.nii.gz", "attention_1": tmp_path / "att1.nii.gz"}
    result = run_task(
        "breast-mass", images, outputs, {"attention_maps": True}, model=proposed, report_path=tmp_path / "r.json"
    )
    mass = sitk.ReadImage(str(outputs["mass"]))
    assert mass.GetSize() == GRID.GetSize() and mass.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayFromImage(mass))) <= {0, 1}
    attention = sitk.GetArrayFromImage(sitk.ReadImage(str(outputs["attention_1"])))
    assert attention.shape == sitk.GetArrayFromImage(mass).shape and 0.0 <= attention.min() <= attention.max() <= 1.0
    assert sorted(result.images) == ["attention_1", "attention_2", "attention_3", "attention_4", "attention_5", "mass"]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["channels_present"] == {"t1c": True, "t2w": True}
    assert any("simulated phantom" in w for w in report["warnings"])
    assert any(note.startswith("t2w residual shift") for note in report["alignment"])


def test_missing_t2w_runs_through_the_presence_mask(study, proposed, small_torch_work):
    full = run_task("breast-mass", dict(study.images), model=proposed)
    only = run_task("breast-mass", {"t1c": study.images["t1c"]}, model=proposed)
    assert only.report["channels_present"] == {"t1c": True, "t2w": False}
    assert any("No T2W" in w for w in only.report["warnings"])
    assert only.images["mass"].GetSize() == full.images["mass"].GetSize()


def test_t2w_on_another_grid_in_register_is_resampled(study, proposed, small_torch_work):
    coarse = study_geometry(50, 10, (6.4, 6.4, 4.8))
    t2w = sitk.Resample(study.images["t2w"], coarse, sitk.Transform(), sitk.sitkLinear, 0.0)
    result = run_task("breast-mass", {"t1c": study.images["t1c"], "t2w": t2w}, model=proposed)
    assert "t2w resampled onto the T1C grid (linear, physical space)" in result.report["alignment"]


@pytest.mark.parametrize("shift", [(12.0, 0.0, 0.0), (0.0, -10.0, 0.0)])
def test_misregistered_t2w_is_refused_and_points_to_rigid_registration(study, proposed, tmp_path, shift):
    moved = sitk.Image(study.images["t2w"])
    moved.SetOrigin([o + s for o, s in zip(moved.GetOrigin(), shift, strict=True)])
    out = tmp_path / "mass.nii.gz"
    with pytest.raises(InputError, match="not in register.*registration.*linear_stage=rigid"):
        run_task("breast-mass", {"t1c": study.images["t1c"], "t2w": moved}, out, model=proposed)
    assert not out.exists()
    far = sitk.Image(study.images["t2w"])
    far.SetOrigin([o + 400.0 for o in far.GetOrigin()])
    with pytest.raises(InputError, match="shares only 0% of its field of view"):
        run_task("breast-mass", {"t1c": study.images["t1c"], "t2w": far}, model=proposed)


def test_bad_roles_are_refused(study, proposed):
    ct = sitk.Cast(study.images["t1c"], sitk.sitkFloat32) * 4.0 - 1000.0
    with pytest.raises(InputError, match="looks like a CT in Hounsfield units"):
        run_task("breast-mass", {"t1c": ct}, model=proposed)
    with pytest.raises(UsageError, match="needs input t1c"):
        run_task("breast-mass", {"t2w": study.images["t2w"]}, model=proposed)
    with pytest.raises(InputError, match="look swapped"):
        run_task("breast-mass", {"t1c": study.images["pre"], "pre": study.images["t1c"]}, model=proposed)
    with pytest.raises(InputError, match="are the same image"):
        run_task("breast-mass", {"t1c": study.images["t1c"], "pre": study.images["t1c"]}, model=proposed)
    with pytest.raises(InputError, match="master sequence"):
        get_task("breast-mass").validate_inputs({"t2w": study.images["t2w"]}, {})


def test_multi_phase_series_needs_a_phase_choice(study):
    task = get_task("breast-mass")
    phases = [study.images["pre"], study.images["t1c"], study.images["t1c"] * 0.9]
    series = sitk.JoinSeries(phases)  # 4D: (x, y, z, phase)
    with pytest.raises(InputError, match=r"multi-phase series \(3 phases.*--param phase=K \(0 to 2"):
        task.prepare_inputs({"t1c": series}, {"phase": None, "pre_phase": None})
    with pytest.raises(InputError, match="phases 0 to 2; --param phase=5"):
        task.prepare_inputs({"t1c": series}, {"phase": 5, "pre_phase": None})
    chosen = task.prepare_inputs({"t1c": series}, {"phase": 1, "pre_phase": 0})
    assert chosen["t1c"].GetDimension() == 3 and chosen["t1c"].GetSize() == GRID.GetSize()
    assert np.array_equal(sitk.GetArrayFromImage(chosen["t1c"]), sitk.GetArrayFromImage(study.images["t1c"]))
    assert np.array_equal(sitk.GetArrayFromImage(chosen["pre"]), sitk.GetArrayFromImage(study.images["pre"]))
    vector = sitk.Compose(phases)  # one component per phase
    assert (
        task.prepare_inputs({"t1c": vector}, {"phase": 2, "pre_phase": None})["t1c"].GetNumberOfComponentsPerPixel()
        == 1
    )
    single = task.prepare_inputs(dict(study.images), {"phase": None, "pre_phase": None})
    assert all(single[r] is study.images[r] for r in single)
    with pytest.raises(InputError, match="'t2w' holds 3 volumes; give a single T2W volume"):
        task.prepare_inputs({"t1c": study.images["t1c"], "t2w": series}, {"phase": None, "pre_phase": None})
    # run_task picks the phase before the generic 3D checks: the phase question, not "4D", is asked.
    with pytest.raises(InputError, match=r"multi-phase series \(3 phases"):
        run_task("breast-mass", {"t1c": series})


def test_run_task_picks_the_phase_of_a_4d_series(study, proposed, small_torch_work):
    series = sitk.JoinSeries([study.images["pre"], study.images["t1c"]])
    result = run_task("breast-mass", {"t1c": series}, params={"phase": 1, "pre_phase": 0}, model=proposed)
    assert result.images["mass"].GetSize() == study.images["t1c"].GetSize()
    assert result.report["inputs"]["pre"]["source"] == "<derived by the task>"


def test_attention_maps_of_a_model_without_them_are_refused(study, tmp_path, small_torch_work):
    unet = _bundle(tmp_path, architecture="unet", channels=("t1c",))
    result = run_task("breast-mass", dict(study.images), model=unet)
    assert result.report["channels_present"] == {"t1c": True}
    with pytest.raises(ModelError, match="no master spatial-attention maps"):
        run_task("breast-mass", dict(study.images), params={"attention_maps": True}, model=unet)


def test_a_3d_bundle_segments_volumes(study, tmp_path, small_torch_work):
    bundle = _bundle(tmp_path, channels=("t1c", "t2w", "subtraction"), spatial_dims=3)
    result = run_task("breast-mass", dict(study.images), model=bundle)
    assert result.images["mass"].GetSize() == GRID.GetSize()
    assert result.report["channels_present"] == {"t1c": True, "t2w": True, "subtraction": True}
    partial = run_task("breast-mass", {"t1c": study.images["t1c"], "pre": study.images["pre"]}, model=bundle)
    assert partial.report["channels_present"] == {"t1c": True, "t2w": False, "subtraction": True}


def test_bundle_of_another_task_is_refused(study, tmp_path):
    bundle = _bundle(tmp_path)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["task"] = "hemorrhage"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="is for task 'hemorrhage'"):
        run_task("breast-mass", dict(study.images), model=bundle)


def test_preprocessing_round_trip_and_checks():
    prep = BreastPreprocessing(channels=("t1c", "t2w", "subtraction"), in_plane_size=96)
    assert BreastPreprocessing.from_dict(prep.to_dict()) == prep and prep.roles == ("t1c", "t2w", "pre")
    with pytest.raises(ModelError, match="not a breast-mass model"):
        BreastPreprocessing.from_dict({"kind": "hemorrhage"})
    with pytest.raises(ModelError, match="must start with 't1c'"):
        BreastPreprocessing(channels=("t2w", "t1c"))
    with pytest.raises(ModelError, match="in that order"):
        BreastPreprocessing(channels=("t1c", "subtraction", "t2w"))
    with pytest.raises(ModelError, match="multiple of 16"):
        BreastPreprocessing(in_plane_size=100)

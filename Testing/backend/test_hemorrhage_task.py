"""Task ``hemorrhage``: contract, networks, preprocessing, post-processing and inference on the real head CT."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import InputError, ModelError, ResourceError
from SlicerMedFuse.hemorrhage.labels import HEMORRHAGE_LABELS
from SlicerMedFuse.hemorrhage.model_input import HemorrhagePreprocessing, prepare_ct, prepare_labels
from SlicerMedFuse.hemorrhage.postprocessing import measure_classes, remove_small_components
from SlicerMedFuse.hemorrhage.preprocessing import bhsd_normalize, resolve_windows
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.specs.hemorrhage import SPEC
from SlicerMedFuse.tasks.registry import get_task

from .hemorrhage_data import head_ct, tiny_bundle

SINGLE_WINDOW_MODEL = "medfuse-hemorrhage-demo"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, shared_data):
    return tiny_bundle(tmp_path_factory, shared_data)


@pytest.fixture(scope="module")
def small_ct(shared_data):
    return head_ct(shared_data)


class _Recorder(Progress):
    def __init__(self):
        super().__init__()
        self.events = []

    def emit(self, event):
        self.events.append(event)


def test_spec_declares_roles_labels_and_parameters():
    spec = get_task("hemorrhage").spec
    assert [i.role for i in spec.inputs] == ["ct"] and spec.inputs[0].modalities == ("CT",)
    out = spec.primary_output
    assert (out.role, out.kind, out.reference_role) == ("labels", "labelmap", "ct")
    assert spec.labels == HEMORRHAGE_LABELS and [lab.value for lab in spec.labels] == [1, 2, 3, 4, 5]
    params = {p.name: p for p in spec.parameters}
    assert params["mirroring"].default is False and params["overlap"].maximum == 0.9
    assert params["min_component_ml"].unit == "mL"
    assert spec.needs_model and SPEC.default_model == "medfuse-hemorrhage-demo-multiwindow"
    assert spec.resolve_parameters({"mirroring": "yes", "overlap": "0.25"})["mirroring"] is True


def test_nnunet_plan_for_the_bhsd_patch():
    from SlicerMedFuse.nets.hemorrhage.plan import plan_unet

    plan = plan_unet((32, 128, 128), (5.0, 0.9, 0.9))
    assert plan.strides[0] == (1, 1, 1) and len(plan.kernel_size) == plan.levels == 6
    # 5 mm slices are not pooled (nor convolved across) until in-plane spacing has caught up
    assert plan.strides[1] == (1, 2, 2) and plan.kernel_size[0] == (1, 3, 3)
    assert all(np.asarray((32, 128, 128)) % plan.divisor() == 0)


@pytest.mark.parametrize("name,channels", [("medfuse.HemorrhageUNet", 1), ("medfuse.MultiWindowHemorrhageUNet", 3)])
def test_networks_build_from_the_allowlist_with_deep_supervision(name, channels, small_torch_work):
    import torch

    from SlicerMedFuse.nets.registry import build_network

    args = {
        "in_channels": channels,
        "out_channels": 6,
        "kernel_size": [[3, 3, 3]] * 3,
        "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
        "filters": [4, 8, 16],
        "deep_supr_num": 1,
    }
    net = build_network(name, args)
    x = torch.randn(2, channels, 8, 16, 16)
    logits = net(x)
    assert logits.shape == (2, 6, 8, 16, 16)
    scales = net(x, deep_supervision=True)
    assert [tuple(s.shape) for s in scales] == [(2, 6, 8, 16, 16), (2, 6, 4, 8, 8)]
    net.eval()
    assert net(x).shape == logits.shape  # the output never depends on train/eval mode
    if channels > 1:
        gates = net.fusion.gates([stem(x[:, i : i + 1]) for i, stem in enumerate(net.stems)])
        assert len(gates) == 3 and all(((g > 0) & (g < 1)).all() for g in gates)


def test_prepare_ct_reorients_resamples_and_normalises_as_bhsd(small_ct):
    pre = HemorrhagePreprocessing(spacing_mm=(4.0, 4.0, 6.0), windows=resolve_windows(["brain", "bone"]))
    prepared = prepare_ct(small_ct, pre)
    assert prepared.grid.GetSpacing() == pytest.approx((4.0, 4.0, 6.0))
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(prepared.grid.GetDirection()) == "RAS"
    assert prepared.array.shape == (2, *reversed(prepared.grid.GetSize())) and prepared.array.dtype == np.float32
    hu = sitk.GetArrayFromImage(prepared.grid)
    np.testing.assert_allclose(prepared.array[0], bhsd_normalize(hu), atol=1e-6)
    assert prepared.array.min() >= -1 and prepared.array.max() <= 1
    labels = sitk.Image(small_ct.GetSize(), sitk.sitkUInt8)
    labels.CopyInformation(small_ct)
    assert prepare_labels(labels, prepared.grid).shape == prepared.array.shape[1:]
    again = HemorrhagePreprocessing.from_dict(pre.to_dict())
    assert again == pre
    with pytest.raises(ModelError, match="preprocessing"):
        HemorrhagePreprocessing.from_dict({"windows": []})


def test_small_components_are_removed_and_classes_measured():
    array = np.zeros((10, 20, 20), np.uint8)
    array[2:6, 2:7, 2:7] = 2  # 100 voxels IPH
    array[8, 15, 15] = 2  # 1 voxel IPH speck
    array[1:4, 10:12, 10:12] = 4  # 12 voxels SAH
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))  # 2 uL voxels
    cleaned, removed = remove_small_components(image, min_volume_ml=0.01)  # 5 voxels
    assert removed == {"IPH": 1}
    measured = measure_classes(cleaned)
    assert measured["IPH"].volume_ml == pytest.approx(0.2) and measured["IPH"].components == 1
    assert measured["IPH"].slice_range == (2, 5) and measured["SAH"].slice_range == (1, 3)
    assert measured["EDH"].volume_ml == 0 and measured["EDH"].slice_range is None
    assert measure_classes(image)["IPH"].components == 2


def test_inference_on_the_real_head_ct_gives_a_measured_label_map(bundle, small_ct, small_torch_work):
    progress = _Recorder()
    result = run_task(
        "hemorrhage", {"ct": small_ct}, params={"mirroring": True, "overlap": 0.25}, model=bundle, progress=progress
    )
    labels = result.images["labels"]
    assert labels.GetPixelID() == sitk.sitkUInt8
    assert labels.GetSize() == small_ct.GetSize() and labels.GetOrigin() == small_ct.GetOrigin()
    assert labels.GetDirection() == small_ct.GetDirection() and labels.GetSpacing() == small_ct.GetSpacing()
    assert set(np.unique(sitk.GetArrayFromImage(labels))) <= {0, 1, 2, 3, 4, 5}
    report = result.report
    assert set(report["classes"]) == {"EDH", "IPH", "IVH", "SAH", "SDH"}
    assert report["model"]["simulated_training"] is True
    assert any("simulated bleeds in one real head CT" in w for w in report["warnings"])
    measured = measure_classes(labels)
    assert report["classes"]["IPH"]["volume_ml"] == pytest.approx(measured["IPH"].volume_ml, abs=1e-3)
    warnings = [e["message"] for e in progress.events if e["event"] == "log" and e["level"] == "warning"]
    assert any("not for clinical use" in w for w in warnings)


def test_thick_slices_warn_and_point_to_super_resolution(bundle, small_ct, small_torch_work):
    thick = small_ct[:, :, ::2]  # 6 mm slices
    result = run_task("hemorrhage", {"ct": thick}, params={"overlap": 0.0}, model=bundle)
    assert any("super-resolution" in w for w in result.report["warnings"])


def test_bad_inputs_give_one_sentence(bundle, small_ct, tmp_path):
    mr = sitk.Cast(sitk.RescaleIntensity(small_ct, 0, 800), sitk.sitkFloat32)
    with pytest.raises(InputError, match="Hounsfield"):
        run_task("hemorrhage", {"ct": mr}, tmp_path / "out.nii.gz", model=bundle)
    body = np.full(sitk.GetArrayViewFromImage(small_ct).shape, -1000, np.int16)
    body[:, 20:100, 20:100] = 40  # a soft-tissue block in air: a CT, but no skull
    phantom = sitk.GetImageFromArray(body)
    phantom.CopyInformation(small_ct)
    with pytest.raises(InputError, match="No head"):
        run_task("hemorrhage", {"ct": phantom}, tmp_path / "out.nii.gz", model=bundle)
    with pytest.raises(ModelError):
        run_task("hemorrhage", {"ct": small_ct}, tmp_path / "out.nii.gz", model="no-such-model")
    assert list(tmp_path.iterdir()) == []


def test_a_ct_too_large_for_memory_is_refused_before_anything_is_written(bundle, small_ct, tmp_path, monkeypatch):
    import SlicerMedFuse.hemorrhage.inference as inference

    real_sysconf = inference.os.sysconf
    free_pages = {"SC_AVPHYS_PAGES": 1024, "SC_PAGE_SIZE": 4096}  # 4 MiB free
    monkeypatch.setattr(inference.os, "sysconf", lambda name: free_pages.get(name) or real_sysconf(name))
    with pytest.raises(
        ResourceError, match=r"needs about .* GB of memory but only 0.0 GB are free; crop the CT"
    ) as raised:
        run_task("hemorrhage", {"ct": small_ct}, tmp_path / "labels.nii.gz", model=bundle)
    assert "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_bundled_demo_model_is_the_offline_default(small_ct, small_torch_work):
    from SlicerMedFuse.models.store import ModelStore

    demo = ModelStore().find_installed(SPEC.default_model)  # nothing installed: the copy shipped in the package
    assert demo.bundled and demo.manifest.task == "hemorrhage" and demo.manifest.simulated_training
    assert "not for clinical use" in demo.manifest.intended_use and "not for clinical use" in demo.manifest.title
    assert (demo.folder / "model.safetensors").stat().st_size <= 8 * 2**20
    assert ModelStore().verify(SPEC.default_model).ok
    result = run_task("hemorrhage", {"ct": small_ct}, params={"overlap": 0.0})  # no model given: the default
    assert result.report["model"]["id"] == SPEC.default_model
    assert any("simulated bleeds in one real head CT" in w for w in result.report["warnings"])


def test_the_default_fuses_three_windows_and_the_single_window_model_is_selectable(small_ct, small_torch_work):
    from SlicerMedFuse.models.store import ModelStore

    fused = ModelStore().find_installed(SPEC.default_model)
    assert "windows fused" in fused.manifest.title and "not for clinical use" in fused.manifest.title
    assert [w["name"] for w in fused.manifest.preprocessing["windows"]] == ["brain", "subdural", "bone"]
    single = ModelStore().find_installed(SINGLE_WINDOW_MODEL)
    assert single.bundled and single.manifest.simulated_training and ModelStore().verify(SINGLE_WINDOW_MODEL).ok
    assert [w["name"] for w in single.manifest.preprocessing["windows"]] == ["brain"]
    result = run_task("hemorrhage", {"ct": small_ct}, params={"overlap": 0.0}, model=SINGLE_WINDOW_MODEL)
    assert result.report["model"]["id"] == SINGLE_WINDOW_MODEL
    assert result.images["labels"].GetSize() == small_ct.GetSize()

"""SR4ZCT end to end on a real CT crop: training pairs, the task's report, cancel, and a PSNR gain over linear."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from SlicerMedFuse.api import run_task
from SlicerMedFuse.device import resolve_device
from SlicerMedFuse.errors import Cancelled, InputError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.superres.degradation import degrade
from SlicerMedFuse.superres.evaluation import score_volume, simulate_thick_slices
from SlicerMedFuse.superres.interpolation import interpolate_slices
from SlicerMedFuse.superres.slice_geometry import detect_slice_geometry
from SlicerMedFuse.superres.sr4zct import sr4zct_config, sr4zct_upsample, training_pairs

from .images import head_ct_crop


class _Recorder(Progress):
    def __init__(self, cancel_after: str | None = None) -> None:
        super().__init__(threading.Event())
        self.events: list[dict] = []
        self.cancel_after = cancel_after

    def emit(self, event: dict) -> None:
        self.events.append(event)
        if self.cancel_after and event.get("stage") == self.cancel_after:
            self.cancel_event.set()


@pytest.fixture
def one_thread():
    """Small patches parallelise poorly: one intra-op thread is faster on a shared 2-core runner."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def simulation(shared_data):
    """96 x 96 x 40 crop of the real head CT (1.5 mm slices) seen through 4.5 mm slices every 2.25 mm."""
    return simulate_thick_slices(head_ct_crop(shared_data), 4.5, 2.25)


def test_simulated_geometry(simulation):
    thick, truth = simulation.thick, simulation.truth
    assert thick.GetSpacing()[2] == pytest.approx(2.25) and thick.GetSize()[:2] == (96, 96)
    geometry = detect_slice_geometry(thick)
    assert (geometry.thickness, geometry.overlap, geometry.thickness_source) == (4.5, 2.25, "dicom")
    # the truth spans exactly the thick slices' centres: first and last thick centre are fine slice centres here
    first = thick.TransformIndexToPhysicalPoint((0, 0, 0))
    last = thick.TransformIndexToPhysicalPoint((0, 0, thick.GetSize()[2] - 1))
    assert truth.TransformIndexToPhysicalPoint((0, 0, 0)) == pytest.approx(first)
    assert truth.TransformIndexToPhysicalPoint((0, 0, truth.GetSize()[2] - 1)) == pytest.approx(last)


def test_training_pairs_blur_one_direction_and_rotate():
    torch.manual_seed(0)
    slices = torch.randn(3, 40, 32, dtype=torch.float64)
    vertical, horizontal = training_pairs(slices, (0.8, 0.9), 3.0, 1.0)
    assert vertical.shape == (3, 40, 32) and horizontal.shape == (3, 32, 40)
    torch.testing.assert_close(vertical, degrade(slices, -2, 0.8, 3.0, 1.0))
    torch.testing.assert_close(horizontal, torch.rot90(degrade(slices, -1, 0.9, 3.0, 1.0), 1, dims=(-2, -1)))
    # in every pair the blur runs along the rows (vertical): columns of a row-constant image stay intact
    rows_constant = (torch.arange(32, dtype=torch.float64) % 2).repeat(2, 40, 1)  # constant down each column
    vertical, horizontal = training_pairs(rows_constant, (0.8, 0.8), 3.0, 1.0)
    torch.testing.assert_close(vertical, rows_constant)
    assert not torch.allclose(horizontal, torch.rot90(rows_constant, 1, dims=(-2, -1)))


def test_sr4zct_beats_linear_interpolation_on_real_ct(simulation, one_thread):
    """The issue's CI test: a short fast-config run (3 epochs, 36 steps of 4 patches) beats linear on a real crop."""
    truth = sitk.GetArrayFromImage(simulation.truth).astype(np.float32)
    linear = sitk.GetArrayFromImage(interpolate_slices(simulation.thick, simulation.truth, "linear")).astype(np.float32)
    config = dataclasses.replace(sr4zct_config("fast"), epochs=3, batch_size=4)
    recorder = _Recorder()
    result = sr4zct_upsample(
        simulation.thick,
        simulation.truth,
        detect_slice_geometry(simulation.thick),
        config,
        device_config=resolve_device("cpu"),
        progress=recorder,
        seed=0,
    )
    restored = sitk.GetArrayFromImage(result.image).astype(np.float32)
    ours, baseline = score_volume(restored, truth), score_volume(linear, truth)
    assert result.image.GetSize() == simulation.truth.GetSize()
    assert restored.min() >= sitk.GetArrayViewFromImage(simulation.thick).min() - 0.5
    assert ours["psnr_volume"] > baseline["psnr_volume"] + 0.5, (ours, baseline)
    assert ours["psnr_sagittal"] > baseline["psnr_sagittal"], (ours, baseline)
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    stages = {event.get("stage") for event in recorder.events}
    assert {"training", "inference"} <= stages
    assert any("epoch 3/3" in event.get("message", "") for event in recorder.events)


def test_task_report_and_cancel(shared_data, tmp_path, one_thread):
    thick = head_ct_crop(shared_data, size=(48, 48, 30), start=(100, 90, 40))[:, :, ::3]  # 4.5 mm slices
    result = run_task(
        "superres", {"volume": thick}, params={"method": "sr4zct", "epochs": 1, "seed": 3}, device="cpu", threads=1
    )
    image, report = result.images["volume"], result.report
    assert image.GetPixelID() == thick.GetPixelID() and image.GetSpacing()[2] == pytest.approx(0.957, abs=0.01)
    assert report["method"] == "sr4zct" and report["sr4zct"]["config"]["quality"] == "fast"
    assert report["sr4zct"]["config"]["epochs"] == 1 and report["sr4zct"]["seed"] == 3
    assert set(report["timings_s"]) >= {"prepare", "train", "infer", "resample"}
    assert report["sr4zct"]["training_loss"]["curve"][0][0] == 1

    out = tmp_path / "fine.nii.gz"
    with pytest.raises(Cancelled):
        run_task("superres", {"volume": thick}, out, {"method": "sr4zct"}, progress=_Recorder(cancel_after="training"))
    assert not out.exists()


def test_sr4zct_refuses_tiny_slices():
    image = sitk.Image(8, 40, 6, sitk.sitkFloat32)
    image.SetSpacing((1.0, 1.0, 4.0))
    image[3, 3, 3] = 1.0
    with pytest.raises(InputError, match="SR4ZCT needs slices"):
        run_task("superres", {"volume": image}, params={"method": "sr4zct"})

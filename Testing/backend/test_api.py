"""run_task end to end: real data in, outputs and report out, nothing written on any error."""

from __future__ import annotations

import json
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import Cancelled, InputError, UsageError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.tasks.registry import get_task, list_tasks

from .images import head_ct_crop, ramp_volume, thick_slices
from .plugin_tasks import install_plugin


@pytest.fixture
def thick_ct(shared_data):
    return thick_slices(head_ct_crop(shared_data), 3)  # 4.5 mm slices


def test_superres_on_real_ct_keeps_extent_and_input_slices(thick_ct, tmp_path):
    out, report = tmp_path / "fine.nii.gz", tmp_path / "report.json"
    result = run_task("superres", {"volume": thick_ct}, out, {"method": "linear", "factor": 3.0}, report_path=report)
    fine = sitk.ReadImage(str(out))
    assert fine.GetSize() == (96, 96, (thick_ct.GetSize()[2] - 1) * 3 + 1)
    assert fine.GetSpacing()[2] == pytest.approx(1.5)
    assert fine.GetOrigin() == pytest.approx(thick_ct.GetOrigin())
    assert fine.GetPixelID() == thick_ct.GetPixelID()  # a CT stays in integer HU
    last_in = thick_ct.TransformIndexToPhysicalPoint((0, 0, thick_ct.GetSize()[2] - 1))
    last_out = fine.TransformIndexToPhysicalPoint((0, 0, fine.GetSize()[2] - 1))
    assert last_out == pytest.approx(last_in)
    # every input slice is an output slice
    np.testing.assert_array_equal(sitk.GetArrayFromImage(fine)[::3], sitk.GetArrayFromImage(thick_ct))
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["slice_spacing_mm"] == pytest.approx(4.5)
    assert written["outputs"]["volume"] == str(out)
    assert result.report["timings_s"]["total"] > 0


@pytest.mark.parametrize("method", ["linear", "bspline", "sinc"])
def test_interpolators_are_exact_on_a_linear_ramp_and_stay_in_range(method):
    ramp = ramp_volume(size=(20, 24, 16))
    result = run_task("superres", {"volume": ramp}, params={"method": method, "target_spacing": 1.0})
    fine = sitk.GetArrayFromImage(result.images["volume"])
    assert fine.min() >= sitk.GetArrayViewFromImage(ramp).min() and fine.max() <= sitk.GetArrayViewFromImage(ramp).max()
    z, y, x = np.meshgrid(*[np.arange(n) for n in fine.shape], indexing="ij")
    expected = x + 2 * y + 5 * (z / 3.0)
    # B-spline and sinc kernels see the mirrored boundary a few samples deep: judge them inside
    interior = (slice(15, -15), slice(5, -5), slice(5, -5))
    # linear and cubic B-spline reproduce a linear function; Lanczos sinc only approximately
    tolerance = {"linear": 1e-3, "bspline": 0.05, "sinc": 0.005 * float(expected.max())}[method]
    np.testing.assert_allclose(fine[interior], expected[interior], atol=tolerance)


def test_isotropic_input_says_there_is_nothing_to_do():
    iso = ramp_volume(spacing=(1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="already isotropic"):
        run_task("superres", {"volume": iso})


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: sitk.Image(20, 20, sitk.sitkFloat32), "3D"),
        (lambda: sitk.Image(20, 20, 8, sitk.sitkFloat32), "same value"),
    ],
)
def test_bad_images_write_nothing(tmp_path, make, fragment):
    out, report = tmp_path / "out.nii.gz", tmp_path / "report.json"
    with pytest.raises(InputError, match=fragment):
        run_task("superres", {"volume": make()}, out, report_path=report)
    assert list(tmp_path.iterdir()) == []


def test_nan_voxels_are_refused(tmp_path):
    array = np.ones((8, 20, 20), dtype=np.float32)
    array[3, 4, 5] = np.nan
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1, 1, 3))
    with pytest.raises(InputError, match="NaN"):
        run_task("superres", {"volume": image}, tmp_path / "out.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_file_and_missing_output_folder(tmp_path):
    bad = tmp_path / "scan.nii.gz"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="scan.nii.gz"):
        run_task("superres", {"volume": bad}, tmp_path / "out.nii.gz")
    with pytest.raises(UsageError, match="does not exist"):
        run_task("superres", {"volume": bad}, tmp_path / "missing" / "out.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


def test_unknown_task_role_and_parameter():
    with pytest.raises(UsageError, match="no task 'nope'"):
        run_task("nope", {})
    with pytest.raises(UsageError, match="needs input volume"):
        run_task("superres", {})
    with pytest.raises(UsageError, match="no input 'ct'"):
        run_task("superres", {"volume": ramp_volume(), "ct": ramp_volume()})
    with pytest.raises(UsageError, match="must be one of"):
        run_task("superres", {"volume": ramp_volume()}, params={"method": "magic"})


def test_plugin_tasks_are_found_through_the_entry_point(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    names = [task.spec.name for task in list_tasks()]
    assert names[0] == "superres" and "site-masked" in names and "site-slow" in names
    assert "site-broken" not in names  # a broken plugin is skipped, the rest still load
    image = ramp_volume()
    mask = sitk.Cast(image > 100, sitk.sitkUInt8)
    result = run_task("site-masked", {"image": image, "mask": mask})
    assert result.report["voxels"] == int(sitk.GetArrayViewFromImage(mask).sum())


def test_mask_on_another_grid_is_refused_by_the_contract(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    image = ramp_volume()
    shifted = sitk.Cast(image > 100, sitk.sitkUInt8)
    shifted.SetOrigin((0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="mask"):
        run_task("site-masked", {"image": image, "mask": shifted}, tmp_path / "out.nii.gz")
    assert not (tmp_path / "out.nii.gz").exists()


def test_cancel_leaves_no_output_and_no_scratch(tmp_path, monkeypatch):
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    scratch_root = Path(tempfile.gettempdir())
    scratch_before = set(scratch_root.glob("medfuse-site-slow-*"))
    with pytest.raises(Cancelled):
        run_task("site-slow", {"image": ramp_volume()}, tmp_path / "out.nii.gz", progress=Progress(cancel_event=cancel))
    assert not (tmp_path / "out.nii.gz").exists()
    assert set(scratch_root.glob("medfuse-site-slow-*")) == scratch_before


def test_builtin_task_instances():
    assert get_task("superres").spec.primary_output.role == "volume"

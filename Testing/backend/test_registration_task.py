"""Task ``registration`` end to end on a downsampled real T1 + aseg pair, and its answers to bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.geometry import resample_to_spacing
from SlicerMedFuse.registration import load_preset, register
from SlicerMedFuse.registration.presets import PRESETS

# voxelmorph's standard 30-label Dice set (../shared/data/brain_registration/freesurfer_aseg_labels.txt)
LABELS = tuple(
    int(v) for v in "2 3 4 7 8 10 11 12 13 14 15 16 17 18 24 28 31 41 42 43 46 47 49 50 51 52 53 54 60 63".split()
)
QUICK = {"linear_iterations": "30,15", "iterations": "60,40,20"}


def _dice(a: sitk.Image, b: sitk.Image) -> float:
    x, y = sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b)
    scores = []
    for label in LABELS:
        p, q = x == label, y == label
        if p.any() or q.any():
            scores.append(2.0 * np.count_nonzero(p & q) / (np.count_nonzero(p) + np.count_nonzero(q)))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def pair(shared_data: Path) -> dict[str, sitk.Image]:
    """The real T1 and aseg at 2 mm (80 x 96 x 112, LIA), and a copy warped by a known smooth B-spline field (up to ~6 mm)."""
    folder = shared_data / "brain_registration"
    t1 = resample_to_spacing(sitk.ReadImage(str(folder / "vxm_test_scan_t1.nii.gz")), 2.0)
    aseg = resample_to_spacing(sitk.ReadImage(str(folder / "vxm_test_scan_aseg.nii.gz")), 2.0, interpolation="nearest")
    warp = sitk.BSplineTransformInitializer(t1, [4, 4, 4], order=3)
    warp.SetParameters(np.random.default_rng(0).normal(0.0, 3.0, len(warp.GetParameters())).tolist())
    moving = sitk.Resample(t1, t1, warp, sitk.sitkLinear, 0.0)
    moving_aseg = sitk.Resample(aseg, aseg, warp, sitk.sitkNearestNeighbor, 0)
    return {"fixed": t1, "fixed_aseg": aseg, "moving": moving, "moving_aseg": moving_aseg}


def test_registration_improves_dice_and_writes_an_itk_field(pair, tmp_path):
    before = _dice(pair["fixed_aseg"], pair["moving_aseg"])
    outputs = {role: tmp_path / f"{role}.nii.gz" for role in ("displacement", "warped", "warped_labels")}
    result = run_task(
        _task(),
        {"fixed": pair["fixed"], "moving": pair["moving"], "moving_labels": pair["moving_aseg"]},
        outputs,
        {"preset": "fast", **QUICK},
        device="cpu",
    )
    after = _dice(pair["fixed_aseg"], result.images["warped_labels"])
    assert after > before + 0.06, (before, after)  # about 0.81 -> 0.90
    report = result.report
    assert report["folding_percent"] < 0.1
    assert report["similarity"]["after"] > report["similarity"]["before"]
    assert set(report["timings_s"]) >= {"linear", "deformable", "compose", "total"}
    # the written field is an ITK displacement field: applying it with SimpleITK reproduces the output
    field = sitk.ReadImage(str(outputs["displacement"]), sitk.sitkVectorFloat64)
    assert field.GetSize() == pair["fixed"].GetSize() and field.GetDirection() == pytest.approx(
        pair["fixed"].GetDirection()
    )
    transform = sitk.DisplacementFieldTransform(field)
    again = sitk.Resample(pair["moving"], pair["fixed"], transform, sitk.sitkLinear, 0.0)
    written = sitk.ReadImage(str(outputs["warped"]))
    inside = sitk.GetArrayViewFromImage(pair["fixed"]) > 0
    assert np.abs(sitk.GetArrayViewFromImage(again) - sitk.GetArrayViewFromImage(written))[inside].max() < 1e-3


def test_diffeomorphic_mode_has_no_folding(pair):
    params = load_preset("diffeomorphic") | {
        "linear_stage": "rigid",
        "linear_iterations": "20,10",
        "iterations": "60,40,20,3",
    }
    result = register(pair["fixed"], pair["moving"], params)
    assert result.report["folding_percent"] == 0.0
    assert result.report["min_jacobian"] > 0.0


def test_multimodal_preset_registers_an_inverted_contrast(pair):
    # a T2-like rendering: bright CSF, dark white matter, dark background
    moving = sitk.Cast(pair["moving"], sitk.sitkFloat32)
    inverted = sitk.Mask(255.0 - moving, sitk.Cast(pair["moving_aseg"] > 0, sitk.sitkUInt8))
    # MIND needs detail: at 2 mm the finest level runs at full resolution (at 1 mm the preset's half is 2 mm)
    params = load_preset("multimodal") | QUICK | {"finest_scale": 1.0, "iterations": "40,30,20"}
    result = register(pair["fixed"], inverted, params)
    warped = sitk.Resample(pair["moving_aseg"], pair["fixed"], result.transform(), sitk.sitkNearestNeighbor, 0)
    before, after = _dice(pair["fixed_aseg"], pair["moving_aseg"]), _dice(pair["fixed_aseg"], warped)
    assert after > before + 0.04, (before, after)  # about 0.81 -> 0.87


def test_linear_stage_recovers_a_known_rigid_motion(pair):
    truth = sitk.Euler3DTransform((0.0, 10.0, 10.0), np.deg2rad(6.0), np.deg2rad(-4.0), 0.0, (5.0, -3.0, 4.0))
    # moving(T(x)) = fixed(x)
    moved = sitk.Resample(pair["fixed"], pair["fixed"], truth.GetInverse(), sitk.sitkLinear, 0.0)
    params = load_preset("fast") | {"deformable": False, "linear_stage": "rigid"}
    result = register(pair["fixed"], moved, params)
    brain = np.argwhere(sitk.GetArrayViewFromImage(pair["fixed_aseg"]) > 0)[::50]
    errors = []
    for k, j, i in brain:
        point = pair["fixed"].TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
        errors.append(np.linalg.norm(np.subtract(result.linear.TransformPoint(point), truth.TransformPoint(point))))
    assert np.mean(errors) < 1.0, np.mean(errors)


def test_wildly_different_spacing_is_resampled(pair):
    coarse_fixed = resample_to_spacing(pair["fixed"], (4.0, 4.0, 6.0))
    params = load_preset("fast") | {"deformable": False, "linear_iterations": "20,10"}
    result = register(coarse_fixed, pair["moving"], params)
    assert result.displacement.GetSize() == coarse_fixed.GetSize()
    assert result.report["similarity"]["after_linear"] >= result.report["similarity"]["before"] - 0.01


def test_bad_inputs_give_clear_errors(pair):
    flat = sitk.Image(40, 40, sitk.sitkFloat32) + 1.0
    flat[10, 10] = 5.0
    with pytest.raises(InputError, match="3D"):
        run_task(_task(), {"fixed": pair["fixed"], "moving": flat})
    empty = sitk.Image(pair["fixed"].GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(pair["fixed"])
    with pytest.raises(InputError):
        run_task(_task(), {"fixed": pair["fixed"], "moving": pair["moving"], "fixed_mask": empty})
    with pytest.raises(InputError, match="empty"):
        register(pair["fixed"], pair["moving"], fixed_mask=empty)
    far = sitk.Image(pair["moving"])
    far.SetOrigin(tuple(np.add(far.GetOrigin(), (500.0, 0.0, 0.0))))
    with pytest.raises(InputError, match="do not overlap"):
        register(pair["fixed"], far, load_preset("fast") | {"initialization": "none"})
    with pytest.raises(UsageError, match="preset"):
        run_task(_task(), {"fixed": pair["fixed"], "moving": pair["moving"]}, params={"preset": "fastest"})
    with pytest.raises(UsageError, match="iteration"):
        run_task(_task(), {"fixed": pair["fixed"], "moving": pair["moving"]}, params={"iterations": "100,60"})


def test_far_apart_images_are_brought_together_by_the_centre_of_mass(pair):
    far = sitk.Image(pair["moving"])
    far.SetOrigin(tuple(np.add(far.GetOrigin(), (300.0, -200.0, 0.0))))
    params = load_preset("fast") | {"deformable": False, "linear_iterations": "20,10"}
    result = register(pair["fixed"], far, params)
    assert result.report["overlap_before_alignment"] == 0.0
    assert result.report["overlap_after_linear"] > 0.9


def test_presets_are_complete_and_task_lists_every_parameter():
    from SlicerMedFuse.registration.presets import PARAMETERS

    for name in PRESETS:
        assert set(load_preset(name)) == set(PARAMETERS)
    names = {p.name for p in _task().spec.parameters}
    assert set(PARAMETERS) <= names and {"preset", "label_interpolation", "initial_transform"} <= names


def _task():
    from SlicerMedFuse.tasks.registration import RegistrationTask

    return RegistrationTask()


def test_listing_the_task_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, SlicerMedFuse.tasks.registration as r; r.RegistrationTask.spec.to_dict(); print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"


def test_registration_adam_matches_torch_optim_adam():
    import torch

    from SlicerMedFuse.registration.adam import Adam

    torch.manual_seed(0)
    target = torch.randn(5, 4)
    ours = torch.zeros(5, 4, requires_grad=True)
    theirs = torch.zeros(5, 4, requires_grad=True)
    optimiser, reference = Adam([[ours]], [0.1]), torch.optim.Adam([theirs], lr=0.1)
    for step in range(20):
        optimiser.lrs[0] = reference.param_groups[0]["lr"] = 0.1 * (1.0 - 0.04 * step)
        for parameter, opt in ((ours, optimiser), (theirs, reference)):
            opt.zero_grad()
            ((parameter - target) ** 3).abs().sum().backward()
            opt.step()
    torch.testing.assert_close(ours, theirs)

"""Task ``aln-metastasis``: contract, report shape, missing T2W / mass, any-grid label, bad input, CLI output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from SlicerMedFuse.api import run_task
from SlicerMedFuse.breast.aln_clinical import CLINICAL_FIELDS, ClinicalNormalization, clinical_array
from SlicerMedFuse.breast.aln_input import AlnPreprocessing
from SlicerMedFuse.breast.aln_simulator import sample_case, simulated_study
from SlicerMedFuse.breast.aln_training import AlnTrainingConfig, aln_bundle_manifest
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.specs.aln_metastasis import SPEC
from SlicerMedFuse.tasks.registry import get_task

CONTRACT_KEYS = {"probability", "threshold", "positive", "intended_use", "model"}


@pytest.fixture(scope="module")
def study():
    return simulated_study(4)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """An untrained small bundle (the pipeline needs shapes, not skill)."""
    import torch

    from SlicerMedFuse.models.bundle import save_bundle
    from SlicerMedFuse.nets.registry import build_network

    config = AlnTrainingConfig(base_features=2, model_id="tiny-aln")
    clinical = ClinicalNormalization.fit(clinical_array([sample_case(s).clinical for s in range(50)]))
    prep = AlnPreprocessing(clinical=clinical, threshold=0.4)
    manifest = aln_bundle_manifest(prep, config, "50 simulated cases", True, "untrained", "test")
    torch.manual_seed(0)
    network = build_network("medfuse.TransferModuleClassifier", config.network_args())
    return save_bundle(network, manifest, tmp_path_factory.mktemp("aln-bundle"))


def _params(study) -> dict[str, float]:
    return dict(study.case.clinical)


def test_spec_roles_parameters_and_no_image_outputs():
    spec = get_task("aln-metastasis").spec
    assert [(i.role, i.required, i.kind) for i in spec.inputs] == [
        ("dce", True, "image"),
        ("t2w", False, "image"),
        ("mass", False, "labelmap"),
    ]
    assert spec.outputs == () and spec.needs_model and SPEC.default_model == "medfuse-aln-metastasis-demo"
    names = [p.name for p in spec.parameters]
    assert names[:10] == [field.name for field in CLINICAL_FIELDS] and names[10] == "threshold"
    assert names[:10] == ["age", "family_history", "hormone_therapy", "menopause", "tumour_size_mm"] + [
        "er_percent",
        "pgr_percent",
        "ki67_percent",
        "her2",
        "grade",
    ]
    assert all(p.kind == "float" for p in spec.parameters)
    with pytest.raises(UsageError, match="writes no images"):
        _ = spec.primary_output
    json.dumps(spec.to_dict())


def test_run_returns_a_probability_with_the_contract_report(study, bundle, tmp_path, small_torch_work):
    images = {**study.images, "mass": study.mass}
    result = run_task("aln-metastasis", images, params=_params(study), model=bundle, report_path=tmp_path / "r.json")
    aln = result.report["aln"]
    assert set(aln) == CONTRACT_KEYS and result.images == {} and result.paths == {}
    assert 0.0 <= aln["probability"] <= 1.0 and isinstance(aln["probability"], float)
    assert aln["threshold"] == 0.4 and aln["positive"] == (aln["probability"] >= 0.4)
    assert aln["model"] == "tiny-aln-0.1.0" and "not for clinical use" in aln["intended_use"]
    assert result.report["sequences_present"] == {"dce": True, "t2w": True}
    assert result.report["crop"]["source"] == "centroid of the 'mass' label" and result.report["crop"]["size_mm"] == 64
    assert json.loads((tmp_path / "r.json").read_text())["aln"] == aln
    again = run_task("aln-metastasis", images, params={**_params(study), "threshold": 0.9}, model=bundle).report
    assert again["aln"]["probability"] == aln["probability"] and again["aln"]["threshold"] == 0.9


def test_missing_t2w_and_missing_mass_are_reported(study, bundle, small_torch_work):
    report = run_task("aln-metastasis", {"dce": study.images["dce"]}, params=_params(study), model=bundle).report
    assert 0.0 <= report["aln"]["probability"] <= 1.0
    assert report["sequences_present"] == {"dce": True, "t2w": False}
    assert any("No T2W was given" in w and "zeros" in w for w in report["warnings"])
    assert report["crop"]["source"].startswith("centre of the DCE volume")
    assert any("No 'mass' label" in w for w in report["warnings"])


def test_mass_label_on_another_grid_gives_the_same_crop(study, bundle, small_torch_work):
    fine = sitk.Resample(
        study.mass, [60] * 3, sitk.Transform(), sitk.sitkNearestNeighbor, study.mass.GetOrigin(), [4 / 3] * 3
    )
    same = run_task("aln-metastasis", {**study.images, "mass": study.mass}, params=_params(study), model=bundle)
    other = run_task("aln-metastasis", {**study.images, "mass": fine}, params=_params(study), model=bundle)
    np.testing.assert_allclose(same.report["crop"]["centre_mm_lps"], other.report["crop"]["centre_mm_lps"], atol=1.0)


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        ({"grade": 5}, UsageError, "Parameter 'grade' must be at most 3"),
        ({"grade": 2.5}, UsageError, "'grade' must be one of 1, 2, 3"),
        ({"her2": 0.5}, UsageError, "'her2' must be one of 0, 1"),
        ({"age": None}, UsageError, "clinical field 'age' .* is missing; give it as --param age=YEARS"),
        ({"ki67_percent": 140}, UsageError, "'ki67_percent' must be at most 100"),
    ],
)
def test_bad_clinical_values_are_refused_in_one_sentence(study, bundle, change, error, fragment):
    params = {k: v for k, v in {**_params(study), **change}.items() if v is not None}
    with pytest.raises(error, match=fragment):
        run_task("aln-metastasis", study.images, params=params, model=bundle)


def test_bad_images_are_refused(study, bundle):
    with pytest.raises(UsageError, match="needs input dce"):
        run_task("aln-metastasis", {"t2w": study.images["t2w"]}, params=_params(study), model=bundle)
    empty = sitk.Image(study.mass.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(study.mass)
    with pytest.raises(InputError, match="Input 'mass' has the same value"):
        run_task("aln-metastasis", {**study.images, "mass": empty}, params=_params(study), model=bundle)
    away = sitk.Image(study.mass)
    away.SetOrigin([o + 500.0 for o in study.mass.GetOrigin()])
    with pytest.raises(InputError, match="lies outside the DCE volume"):
        run_task("aln-metastasis", {**study.images, "mass": away}, params=_params(study), model=bundle)
    ct = sitk.Cast(study.images["dce"], sitk.sitkFloat32) - 1000.0
    with pytest.raises(InputError, match="looks like a CT"):
        run_task("aln-metastasis", {"dce": ct}, params=_params(study), model=bundle)
    with pytest.raises(UsageError, match="writes no images"):
        run_task("aln-metastasis", study.images, "out.nii.gz", params=_params(study), model=bundle)


def _cli_args(study, folder, bundle, **change) -> list[str]:
    paths = {}
    for role, image in {**study.images, "mass": study.mass}.items():
        paths[role] = folder / f"{role}.nii.gz"
        sitk.WriteImage(image, str(paths[role]))
    argv = ["run", "aln-metastasis", "--input", f"dce={paths['dce']}", "--input", f"mass={paths['mass']}"]
    for name, value in {**_params(study), **change}.items():
        if value is not None:
            argv += ["--param", f"{name}={value}"]
    return [*argv, "--model", str(bundle), "--threads", "1", "--progress", "none"]


def test_cli_prints_the_result_and_refuses_bad_input_with_an_exit_code(study, bundle, tmp_path, capsys):
    from SlicerMedFuse.cli import main

    assert main(_cli_args(study, tmp_path, bundle)) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == CONTRACT_KEYS and 0.0 <= printed["probability"] <= 1.0
    assert main(_cli_args(study, tmp_path, bundle, grade=5)) == 2
    error = capsys.readouterr().err.strip()
    assert error == "medfuse: Parameter 'grade' must be at most 3.0; got 5.0."
    assert main(_cli_args(study, tmp_path, bundle, menopause=None)) == 2
    assert "clinical field 'menopause'" in capsys.readouterr().err


def test_the_shipped_demo_model_is_the_default_and_says_it_is_simulated(study, small_torch_work):
    report = run_task("aln-metastasis", {**study.images, "mass": study.mass}, params=_params(study)).report
    assert report["aln"]["model"].startswith(f"{SPEC.default_model}-") and report["model"]["simulated_training"]
    assert "simulated ALN status" in report["aln"]["intended_use"] and 0.0 <= report["aln"]["probability"] <= 1.0
    assert any("not for clinical use" in w for w in report["warnings"])

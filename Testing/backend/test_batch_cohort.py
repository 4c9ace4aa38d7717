"""Reading a cohort and refusing bad batch-level input before any case runs (no worker processes here)."""

from __future__ import annotations

import pytest
import SimpleITK as sitk

from SlicerMedFuse.batch import BatchOptions, cases_from_csv, cases_from_folder, run_batch
from SlicerMedFuse.errors import InputError, UsageError
from SlicerMedFuse.specs import task_spec

from .images import ramp_volume

SPEC = task_spec("superres")


def make_cohort(root, names=("a", "b")):
    for name in names:
        (root / name).mkdir(parents=True)
        sitk.WriteImage(ramp_volume(), str(root / name / "thick.nii.gz"))
    return root


def test_folder_cases_match_one_file_per_role(tmp_path):
    root = make_cohort(tmp_path / "cohort", ("b", "a"))
    (root / "c").mkdir()  # no file: this case fails, the others run
    (root / ".hidden").mkdir()
    cases = cases_from_folder(root, {"volume": "*.nii.gz"}, SPEC, {"method": "linear"})
    assert [c.case_id for c in cases] == ["a", "b", "c"]
    assert cases[0].inputs == {"volume": str(root / "a" / "thick.nii.gz")} and cases[0].params == {"method": "linear"}
    assert cases[0].problem is None and "no file matches volume='*.nii.gz'" in cases[2].problem


def test_two_matches_are_a_case_problem(tmp_path):
    root = make_cohort(tmp_path / "cohort", ("a", "b"))
    sitk.WriteImage(ramp_volume(), str(root / "b" / "second.nii.gz"))
    problem = cases_from_folder(root, {"volume": "*.nii.gz"}, SPEC, {})[1].problem
    assert "2 files match" in problem and "exactly one file" in problem


@pytest.mark.parametrize(
    ("patterns", "params", "error", "fragment"),
    [
        ({"ct": "*.nii.gz"}, {}, UsageError, "has no input 'ct'"),
        ({}, {}, UsageError, "needs input volume"),
        ({"volume": "*.nii.gz"}, {"method": "magic"}, UsageError, "(--param)"),
        ({"volume": "*.mha"}, {}, InputError, "No case folder"),
    ],
)
def test_bad_folder_input_is_one_sentence(tmp_path, patterns, params, error, fragment):
    root = make_cohort(tmp_path / "cohort")
    with pytest.raises(error, match=None) as caught:
        cases_from_folder(root, patterns, SPEC, params)
    assert fragment in caught.value.message and "\n" not in caught.value.message


def test_missing_cohort_folder(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        cases_from_folder(tmp_path / "nope", {"volume": "*"}, SPEC, {})


def test_csv_cases_with_parameter_columns(tmp_path):
    make_cohort(tmp_path / "scans")
    table = tmp_path / "cohort.csv"
    table.write_text(
        "case_id,volume,method\np1,scans/a/thick.nii.gz,bspline\np2,scans/b/thick.nii.gz,\np3,scans/gone.nii.gz,\n"
    )
    cases = cases_from_csv(table, SPEC, {"method": "linear"})
    assert [c.params["method"] for c in cases] == ["bspline", "linear", "linear"]
    assert cases[0].inputs["volume"] == str(tmp_path / "scans" / "a" / "thick.nii.gz")
    assert cases[2].problem is not None and "does not exist" in cases[2].problem


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("volume\nscans/a/thick.nii.gz\n", "no 'case_id' column"),
        ("case_id,volume,colour\np1,scans/a/thick.nii.gz,red\n", "Column 'colour'"),
        ("case_id,volume\np1,scans/a/thick.nii.gz\np1,scans/b/thick.nii.gz\n", "appears twice"),
        ("case_id,volume\n../up,scans/a/thick.nii.gz\n", "cannot be a folder name"),
        ("case_id,volume,method\np1,scans/a/thick.nii.gz,magic\n", "case 'p1'"),
        ("case_id,method\np1,linear\n", "needs input volume"),
    ],
)
def test_bad_csv_is_one_sentence(tmp_path, text, fragment):
    make_cohort(tmp_path / "scans")
    table = tmp_path / "cohort.csv"
    table.write_text(text)
    with pytest.raises(UsageError) as caught:
        cases_from_csv(table, SPEC, {})
    assert fragment in caught.value.message


def test_empty_csv_is_input_error(tmp_path):
    table = tmp_path / "cohort.csv"
    table.write_text("case_id,volume\n")
    with pytest.raises(InputError, match="no rows"):
        cases_from_csv(table, SPEC, {})


@pytest.mark.parametrize("where", ["cohort", "cohort/a", "cohort/results"])
def test_output_folder_among_the_inputs_is_refused_before_work(tmp_path, where):
    root = make_cohort(tmp_path / "cohort")
    cases = cases_from_folder(root, {"volume": "*.nii.gz"}, SPEC, {})
    with pytest.raises(UsageError, match="input folder"):
        run_batch("superres", cases, tmp_path / where, cohort_root=root)
    assert not (tmp_path / "cohort" / "results").exists()


def test_existing_results_need_resume_and_unknown_output_role_is_refused(tmp_path):
    root = make_cohort(tmp_path / "cohort")
    cases = cases_from_folder(root, {"volume": "*.nii.gz"}, SPEC, {})
    (tmp_path / "out" / "a").mkdir(parents=True)
    with pytest.raises(UsageError, match="add --resume"):
        run_batch("superres", cases, tmp_path / "out")
    with pytest.raises(UsageError, match="has no output 'labels'"):
        run_batch("superres", cases, tmp_path / "out2", BatchOptions(write_roles=("labels",)))


def test_summary_values_flatten_the_report_results_not_the_run():
    from SlicerMedFuse.batch.case_record import summary_values

    report = {
        "task": "hemorrhage",
        "device": {"name": "cpu"},
        "timings_s": {"total": 1.0},
        "total_volume_ml": 2.5,
        "classes": {"IPH": {"volume_ml": 2.5, "slice_range": None}, "SDH": {"volume_ml": 0.0}},
        "output_size": [1, 2, 3],
    }
    assert summary_values(report, {"probability": 0.75}) == {
        "total_volume_ml": 2.5,
        "classes.IPH.volume_ml": 2.5,
        "classes.SDH.volume_ml": 0.0,
        "probability": 0.75,
    }


def test_a_file_every_case_would_write_is_refused(tmp_path):
    from SlicerMedFuse.specs import task_spec

    (tmp_path / "cohort" / "c1").mkdir(parents=True)
    with pytest.raises(UsageError) as caught:
        cases_from_folder(
            tmp_path / "cohort",
            {"fixed": "*.nii.gz", "moving": "*.nii.gz"},
            task_spec("registration"),
            {"transform_file": str(tmp_path / "t.h5")},
        )
    assert "every case write the same file" in caught.value.message

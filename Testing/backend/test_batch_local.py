"""``medfuse batch`` on the local process pool: outputs, results table, a corrupt case, resume, the CLI."""

from __future__ import annotations

import csv
import json

import SimpleITK as sitk

from SlicerMedFuse.batch import BatchOptions, cases_from_folder, run_batch
from SlicerMedFuse.batch.case_record import DONE_MARKER
from SlicerMedFuse.batch.case_run import STAGING_FOLDER
from SlicerMedFuse.errors import ExitCode
from SlicerMedFuse.specs import task_spec

from .images import ramp_volume
from .test_cli import assert_one_sentence, medfuse

SPEC = task_spec("superres")


def make_cohort(root, good=("a", "b", "c"), corrupt=("broken",)):
    for name in good:
        (root / name).mkdir(parents=True)
        sitk.WriteImage(ramp_volume(), str(root / name / "thick.nii.gz"))
    for name in corrupt:
        (root / name).mkdir(parents=True)
        (root / name / "thick.nii.gz").write_bytes(b"not an image")
    return root


def read_table(out):
    with (out / "results.csv").open() as handle:
        return {row["case_id"]: row for row in csv.DictReader(handle)}


def test_pool_writes_each_case_and_a_table_and_a_corrupt_case_fails_alone(tmp_path):
    root = make_cohort(tmp_path / "cohort")
    cases = cases_from_folder(root, {"volume": "*.nii.gz"}, SPEC, {"method": "linear"})
    result = run_batch("superres", cases, tmp_path / "out", BatchOptions(workers=2), cohort_root=root)

    assert result.counts == {"ok": 3, "failed": 1, "skipped": 0}
    rows = read_table(tmp_path / "out")
    assert list(rows) == ["a", "b", "broken", "c"]  # case folders in sorted order
    assert rows["broken"]["status"] == "failed" and "Cannot read" in rows["broken"]["error"]
    assert rows["a"]["slice_spacing_mm"] == "3.0" and float(rows["a"]["seconds"]) > 0
    volume = sitk.ReadImage(str(tmp_path / "out" / "a" / "volume.nii.gz"))
    assert volume.GetSpacing()[2] < 3.0 and volume.GetOrigin() == ramp_volume().GetOrigin()
    report = json.loads((tmp_path / "out" / "a" / "report.json").read_text())
    assert report["outputs"]["volume"] == str(tmp_path / "out" / "a" / "volume.nii.gz")
    assert not (tmp_path / "out" / "broken").exists() and not (tmp_path / "out" / STAGING_FOLDER).exists()
    table = json.loads((tmp_path / "out" / "results.json").read_text())
    assert table["task"] == "superres" and [c["status"] for c in table["cases"]] == ["ok", "ok", "failed", "ok"]


def test_resume_skips_finished_cases_and_reruns_failed_and_changed_ones(tmp_path):
    root = make_cohort(tmp_path / "cohort", good=("a", "b"))
    out = tmp_path / "out"
    pattern = {"volume": "*.nii.gz"}
    run_batch("superres", cases_from_folder(root, pattern, SPEC, {"method": "linear"}), out, BatchOptions(workers=1))
    marker_a = (out / "a" / DONE_MARKER).read_text()

    sitk.WriteImage(ramp_volume(size=(16, 16, 8)), str(root / "broken" / "thick.nii.gz"))  # fixed
    sitk.WriteImage(ramp_volume(size=(12, 12, 6)), str(root / "b" / "thick.nii.gz"))  # changed inputs
    cases = cases_from_folder(root, pattern, SPEC, {"method": "linear"})
    result = run_batch("superres", cases, out, BatchOptions(workers=1, resume=True))
    statuses = {o.case_id: o.status for o in result.outcomes}
    assert statuses == {"a": "skipped", "b": "ok", "broken": "ok"}
    assert (out / "a" / DONE_MARKER).read_text() == marker_a  # untouched
    assert sitk.ReadImage(str(out / "b" / "volume.nii.gz")).GetSize()[0] == 12
    assert read_table(out)["a"]["slice_spacing_mm"] == "3.0"  # a skipped case keeps its summary

    other = cases_from_folder(root, pattern, SPEC, {"method": "bspline"})  # other parameters: every case again
    assert run_batch("superres", other, out, BatchOptions(workers=1, resume=True)).counts["ok"] == 3


def test_cli_batch_exit_codes(tmp_path):
    root = make_cohort(tmp_path / "cohort", good=("a",))
    out = tmp_path / "out"
    done = medfuse(
        "batch", "superres", "--cases", str(root), "-i", "volume=*.nii.gz", "-p", "method=linear", "-o", str(out)
    )
    assert done.returncode == ExitCode.INPUT and "1 ok, 0 skipped, 1 failed" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert_one_sentence(
        medfuse("batch", "superres", "--cases", str(root), "-i", "ct=*.nii.gz", "-o", str(tmp_path / "o2")),
        ExitCode.USAGE,
        "has no input 'ct'",
    )
    assert_one_sentence(
        medfuse("batch", "superres", "--cases", str(root), "-i", "volume=*.nii.gz", "-o", str(root)),
        ExitCode.USAGE,
        "input folder",
    )

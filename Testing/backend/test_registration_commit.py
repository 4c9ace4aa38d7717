"""Registration's transform file goes through run_task's all-or-nothing commit; its progress only moves forward.

The ``transform_file`` parameter names a file the task makes besides its image outputs. A cancel
at any point, or a commit that fails, must leave nothing at any output path, the transform file
included, and no staging folder beside them.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import SlicerMedFuse.api as api
from SlicerMedFuse.api import run_task
from SlicerMedFuse.errors import Cancelled
from SlicerMedFuse.progress import Progress

from .registration_data import TINY, warped_pair

pytestmark = pytest.mark.usefixtures("small_torch_work")


@pytest.fixture(scope="module")
def pair(shared_data: Path) -> dict[str, sitk.Image]:
    return warped_pair(shared_data)


class CancelAtStage(Progress):
    """Sets its cancel event when the job reaches ``stage``, as a user pressing Cancel then would."""

    def __init__(self, stage: str) -> None:
        super().__init__(threading.Event())
        self.stage = stage
        self.stages: list[str] = []
        self.fractions: list[float] = []

    def emit(self, event: dict) -> None:
        if event["event"] == "progress":
            self.stages.append(event["stage"])
            self.fractions.append(event["fraction"])
            if event["stage"] == self.stage:
                self.cancel_event.set()


def _outputs(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    paths = {"displacement": folder / "field.nii.gz", "warped": folder / "warped.nii.gz"}
    return paths, {**TINY, "transform_file": str(folder / "transform.h5")}


def _assert_empty(folder: Path) -> None:
    left = sorted(p.name for p in folder.iterdir())
    assert left == [], f"left behind after the failed job: {left}"


@pytest.mark.parametrize("stage", ["deformable", "writing the .h5 transform"])
def test_a_cancel_leaves_no_transform_file_and_no_output(pair, tmp_path, stage):
    paths, params = _outputs(tmp_path)
    progress = CancelAtStage(stage)
    with pytest.raises(Cancelled):
        run_task("registration", pair, paths, params, device="cpu", progress=progress, report_path=tmp_path / "r.json")
    assert stage in progress.stages
    _assert_empty(tmp_path)


def test_a_failed_commit_leaves_no_transform_file(pair, tmp_path, monkeypatch):
    paths, params = _outputs(tmp_path)

    def disk_full(obj, path, **kwargs):
        raise OSError(28, "No space left on device")

    # the report is the last file staged, after the images and the transform: every one of them must go
    monkeypatch.setattr(api, "write_json_atomic", disk_full)
    with pytest.raises(OSError, match="No space left"):
        run_task("registration", pair, paths, params, device="cpu", report_path=tmp_path / "r.json")
    _assert_empty(tmp_path)


def test_a_successful_job_commits_the_transform_file_with_the_images(pair, tmp_path):
    paths, params = _outputs(tmp_path)
    result = run_task("registration", pair, paths, params, device="cpu", report_path=tmp_path / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["field.nii.gz", "r.json", "transform.h5", "warped.nii.gz"]
    assert result.report["transform_file"] == params["transform_file"]
    transform = sitk.ReadTransform(params["transform_file"])
    field = sitk.DisplacementFieldTransform(sitk.Cast(result.images["displacement"], sitk.sitkVectorFloat64))
    point = pair["fixed"].TransformContinuousIndexToPhysicalPoint((10.5, 20.2, 30.7))
    np.testing.assert_allclose(transform.TransformPoint(point), field.TransformPoint(point), atol=1e-9)


def test_progress_only_moves_forward_through_the_linear_and_deformable_stages(pair):
    progress = CancelAtStage("never")  # records, never cancels
    run_task("registration", pair, params={**TINY, "linear_stage": "affine"}, device="cpu", progress=progress)
    assert {"linear", "deformable"} <= set(progress.stages)
    assert progress.fractions == sorted(progress.fractions) and progress.fractions[-1] == 1.0

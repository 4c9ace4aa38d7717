"""MedFuseLib.task_job: the real backend CLI run from scene nodes; cancel and cleanup."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

from MedFuseLib.mrml_bridge import image_to_volume_node, volume_node_to_image  # noqa: E402
from MedFuseLib.runner import SubprocessRunner  # noqa: E402
from MedFuseLib.task_job import BackendTaskJob  # noqa: E402

pytestmark = pytest.mark.slicer

HEAD_CT = "head_ct/invesalius_ct0051_head.nii.gz"


def _backend_cli_ready() -> bool:
    if importlib.util.find_spec("SlicerMedFuse.cli") is None:
        return False
    import SlicerMedFuse.cli

    return callable(getattr(SlicerMedFuse.cli, "main", None))


@pytest.fixture
def small_ct_node(shared_data: Path, slicer_scene):
    """A 64 x 64 x 20 crop of the head CT (0.96 x 0.96 x 1.5 mm) as a scalar volume node."""
    image = sitk.ReadImage(str(shared_data / HEAD_CT))[96:160, 96:160, 40:60]
    return image_to_volume_node(image, slicer_scene, "ct")


class _SlowCommandRunner(SubprocessRunner):
    """Runs a sleeping script instead of the backend (the exported inputs are still written)."""

    def __init__(self) -> None:
        super().__init__(cancel_grace_s=1.0)
        self.command: list[str] = []

    def start(self, command, *, env=None, cwd=None):
        self.command = list(command)
        slow = [sys.executable, "-c", "import time; print('working', flush=True); time.sleep(120)"]
        return super().start(slow, env=env, cwd=cwd)


@pytest.mark.skipif(not _backend_cli_ready(), reason="the backend CLI (SlicerMedFuse.cli.main) is not there yet")
def test_superres_through_the_real_backend(small_ct_node, slicer_scene, tmp_path: Path) -> None:
    before = sitk.GetArrayFromImage(volume_node_to_image(small_ct_node))
    modified_time = small_ct_node.GetMTime()
    job = BackendTaskJob(
        "superres", {"volume": small_ct_node}, ["volume"], {"method": "linear"}, device="cpu", temp_root=tmp_path
    )
    with job:
        job.start()
        fractions = []
        deadline = time.monotonic() + 120
        while not job.done and time.monotonic() < deadline:
            job.poll()
            fractions.append(job.fraction)
            time.sleep(0.05)
        job.wait(10)
        assert job.succeeded, job.error_message
        assert job.fraction == 1.0 and job.stage == "done"
        assert fractions == sorted(fractions)
        assert job.report["task"] == "superres" and job.report["method"] == "linear"
        output = job.result_images()["volume"]
        temp_dir = job.temp_dir
        assert temp_dir is not None and temp_dir.is_dir()
    assert not temp_dir.exists()  # the context manager cleaned up

    source = volume_node_to_image(small_ct_node)
    assert output.GetSize()[:2] == source.GetSize()[:2] and output.GetSize()[2] > source.GetSize()[2]
    assert output.GetSpacing()[2] < source.GetSpacing()[2]
    np.testing.assert_allclose(output.GetOrigin(), source.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(output.GetDirection(), source.GetDirection(), atol=1e-6)
    result_node = image_to_volume_node(output, slicer_scene, "ct superres", reference_node=small_ct_node)
    assert result_node.GetImageData().GetDimensions() == output.GetSize()
    # the input node was only read
    assert small_ct_node.GetMTime() == modified_time
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume_node_to_image(small_ct_node)), before)


@pytest.mark.skipif(not _backend_cli_ready(), reason="the backend CLI (SlicerMedFuse.cli.main) is not there yet")
def test_backend_error_becomes_the_message(small_ct_node, tmp_path: Path) -> None:
    job = BackendTaskJob(
        "superres", {"volume": small_ct_node}, ["volume"], {"method": "cubic-nonsense"}, temp_root=tmp_path
    )
    job.start()
    job.wait(60)
    assert job.done and not job.succeeded and job.returncode == 2
    with pytest.raises(RuntimeError, match="method"):
        job.result_images()
    job.cleanup()
    assert not any(tmp_path.iterdir())


def test_start_cancel_cleanup_with_a_slow_command(small_ct_node, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MEDFUSE_KEEP_TEMP", raising=False)
    runner = _SlowCommandRunner()
    job = BackendTaskJob(
        "superres",
        {"volume": small_ct_node},
        ["volume"],
        {"method": "sinc"},
        runner=runner,
        python="py",
        temp_root=tmp_path,
    )
    assert not job.started and not job.done and job.poll() == []
    job.start()
    exported = job.temp_dir / "inputs" / "volume.nrrd"
    assert exported.is_file()
    assert sitk.ReadImage(str(exported)).GetSize() == (64, 64, 20)
    assert runner.command[:5] == ["py", "-m", "SlicerMedFuse", "run", "superres"]
    assert f"volume={exported}" in runner.command and "method=sinc" in runner.command

    deadline = time.monotonic() + 20
    while not job.messages and time.monotonic() < deadline:
        job.poll()
        time.sleep(0.02)
    assert job.messages == ["working"] and not job.done

    job.cancel()
    assert job.wait(10) != 0
    assert job.done and not job.succeeded
    with pytest.raises(RuntimeError, match="cancelled"):
        job.result_images()
    job.cleanup()
    assert not job.temp_dir.exists()


def test_keep_temp_from_environment(small_ct_node, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDFUSE_KEEP_TEMP", "1")
    job = BackendTaskJob(
        "superres", {"volume": small_ct_node}, ["volume"], runner=_SlowCommandRunner(), temp_root=tmp_path
    )
    job.start()
    job.cleanup()  # cancels the running command, keeps the folder
    assert job.done and job.temp_dir.is_dir()

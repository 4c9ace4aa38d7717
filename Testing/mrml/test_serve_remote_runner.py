"""MedFuseLib.remote_runner: a module Logic runs its job on a real ``medfuse serve`` (loopback) unchanged."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import SlicerMedFuse
from Testing.backend.images import ramp_volume
from Testing.backend.serve_harness import running_server
from Testing.mrml.conftest import import_slicer_core

pytest.importorskip("fastapi")
slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseSuperResolution"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseLib.mrml_bridge import image_to_volume_node  # noqa: E402  (needs slicer-core, checked above)
from MedFuseLib.remote_runner import RemoteRunner, remote_request  # noqa: E402
from MedFuseLib.runner import backend_command, run_to_completion  # noqa: E402
from MedFuseSuperResolutionLib import SuperResolutionLogic  # noqa: E402

from SlicerMedFuse.facade import ServerClient  # noqa: E402

pytestmark = pytest.mark.slicer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("home"), "--max-jobs", "1") as running:
        yield running


def test_the_command_line_becomes_a_server_request(tmp_path):
    command = backend_command(
        "superres",
        {"volume": "in.nrrd"},
        {"volume": "out.nrrd"},
        {"method": "linear", "epochs": 3},
        report="r.json",
        python="py",
    )
    request = remote_request(command)
    assert request == {
        "task": "superres",
        "uploads": {"volume": "in.nrrd"},
        "params": {"method": "linear", "epochs": "3"},
        "model": None,
        "outputs": {"volume": "out.nrrd"},
        "report": "r.json",
    }


def test_a_local_bundle_folder_is_sent_as_its_id_and_version():
    # the Logics resolve models to bundle folders in the local store; the server takes ids only
    bundled = Path(SlicerMedFuse.__file__).parent / "models" / "bundled" / "medfuse-hemorrhage-demo-0.4.1"
    command = backend_command("hemorrhage", {"ct": "ct.nrrd"}, {"labels": "l.nrrd"}, model=bundled, python="py")
    assert remote_request(command)["model"] == "medfuse-hemorrhage-demo@0.4.1"
    named = backend_command("hemorrhage", {"ct": "ct.nrrd"}, {"labels": "l.nrrd"}, model="some-id", python="py")
    assert remote_request(named)["model"] == "some-id"


def test_a_module_logic_runs_its_job_on_the_server(slicer_scene, server):
    image = ramp_volume()
    node = image_to_volume_node(image, slicer_scene, "thick ramp")
    before = slicer.util.arrayFromVolume(node).copy()
    output = SuperResolutionLogic(runner=RemoteRunner(server.client)).process(node, device="cpu", method="linear")
    assert output is not node and output.GetImageData().GetDimensions() == (20, 24, 28)
    assert output.GetSpacing() == pytest.approx((1.0, 1.0, 1.0))
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), before)
    assert [job["state"] for job in server.client.jobs()] == ["succeeded"]


def test_cancel_reaches_the_server_and_a_lost_server_is_one_sentence(server, tmp_path):
    sitk.WriteImage(ramp_volume(), str(tmp_path / "in.nrrd"))
    command = backend_command(
        "superres",
        {"volume": str(tmp_path / "in.nrrd")},
        {"volume": str(tmp_path / "out.nrrd")},
        {"method": "sr4zct", "epochs": 10000},
    )
    job = RemoteRunner(server.client).start(command)
    seen: list[dict] = []

    def cancel_once_running(event: dict) -> None:
        seen.append(event)
        if event["event"] == "progress":
            job.cancel()

    assert run_to_completion(job, cancel_once_running) == 130
    assert seen[-1]["name"] == "Cancelled" and "Cancelled" in job.error_message
    assert server.client.status(job.job_id)["state"] == "cancelled"
    assert not (tmp_path / "out.nrrd").exists()

    nowhere = RemoteRunner(ServerClient("http://127.0.0.1:9", "token", timeout_s=5)).start(command)
    started = time.monotonic()
    assert run_to_completion(nowhere) == 1 and time.monotonic() - started < 30
    assert nowhere.error_message.startswith("Cannot reach the MedFuse server at http://127.0.0.1:9")

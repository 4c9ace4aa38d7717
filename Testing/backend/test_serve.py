"""``medfuse serve`` through a real uvicorn on 127.0.0.1 and the standard-library client.

One server (module scope) answers most tests; the restart test starts its own. Jobs are tiny
``superres`` runs (``method=linear``, about 2 s each); a long job (SR4ZCT, 10000 epochs) stands in for
one that is still running when it is cancelled or the server dies.
"""

from __future__ import annotations

import http.client
import io
import json
import signal
import socket
import stat
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import SimpleITK as sitk

from SlicerMedFuse.serve_client import API_VERSION_HEADER, RemoteError, ServerClient

from .images import ramp_volume
from .serve_harness import running_server, wait_for_state

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

LINEAR = {"method": "linear"}
LONG = {"method": "sr4zct", "epochs": 10000}


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    path = tmp_path_factory.mktemp("client") / "thick.nrrd"
    sitk.WriteImage(ramp_volume(), str(path))
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory, volume):
    """An allow-listed server folder holding one volume, next to a secret outside it."""
    base = tmp_path_factory.mktemp("server-data")
    allowed = base / "allowed"
    allowed.mkdir()
    sitk.WriteImage(ramp_volume(), str(allowed / "case.nrrd"))
    sitk.WriteImage(ramp_volume(), str(base / "secret.nrrd"))
    (allowed / "link.nrrd").symlink_to(base / "secret.nrrd")
    return allowed


@pytest.fixture(scope="module")
def server(tmp_path_factory, root):
    home = tmp_path_factory.mktemp("home")
    with running_server(home, "--allow-root", str(root), "--max-upload-mb", "1", "--max-jobs", "1") as running:
        yield running


def _raw(server, method, route, body=None, headers=None):
    """Status and decoded JSON of a request sent without the client (for what the client never sends)."""
    request = urllib.request.Request(server.url + route, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie nobody has reaped yet counts as ended)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False


def _auth(server, **extra):
    return {"Authorization": f"Bearer {server.token}", **extra}


def test_a_job_runs_end_to_end_with_uploaded_and_server_side_inputs(server, root, volume, tmp_path):
    client = server.client
    info = client.check_version()
    assert info["api_version"].startswith("1.") and info["allowed_roots"] == [str(root)]
    superres = next(task for task in client.tasks() if task["name"] == "superres")
    assert [i["role"] for i in superres["inputs"]] == ["volume"]

    job = client.submit("superres", uploads={"volume": volume}, params=LINEAR)
    assert job["state"] == "queued"
    events = list(client.events(job["id"]))
    assert events[0]["event"] == "start" and events[-1]["event"] == "result"
    assert [e["fraction"] for e in events if e["event"] == "progress"][-1] == 1.0
    assert client.status(job["id"])["state"] == "succeeded"
    fine = sitk.ReadImage(str(client.download(job["id"], "volume", tmp_path / "fine.nii.gz")))
    assert fine.GetSize() == (20, 24, 28) and fine.GetSpacing() == pytest.approx((1.0, 1.0, 1.0))
    assert fine.GetOrigin() == pytest.approx(ramp_volume().GetOrigin())
    assert client.report(job["id"])["method"] == "linear"

    by_path = client.submit(
        "superres", server_inputs={"volume": str(root / "case.nrrd")}, params=LINEAR, outputs={"volume": ".nrrd"}
    )
    assert client.wait(by_path["id"])["state"] == "succeeded"
    as_nrrd = client.download(by_path["id"], "volume", tmp_path / "fine.nrrd")
    assert as_nrrd.read_bytes().startswith(b"NRRD") and sitk.ReadImage(str(as_nrrd)).GetSize() == (20, 24, 28)
    ids = [status["id"] for status in client.jobs()]
    assert job["id"] in ids and by_path["id"] in ids


def test_every_request_needs_the_token(server):
    assert _raw(server, "GET", "/v1/info")[0] == 401
    code, body = _raw(server, "GET", "/v1/jobs", headers={"Authorization": "Bearer " + "x" * len(server.token)})
    assert code == 401 and "token" in body["detail"]
    assert _raw(server, "GET", "/v1/no-such-route")[0] == 401  # nothing is learnt without the token
    assert stat.S_IMODE((server.home / "server" / "token").stat().st_mode) == 0o600
    with pytest.raises(RemoteError, match="token"):
        ServerClient(server.url, "wrong").tasks()


def test_a_client_of_another_major_version_gets_one_sentence(server):
    code, body = _raw(server, "GET", "/v1/info", headers=_auth(server, **{API_VERSION_HEADER: "2.3"}))
    assert code == 409
    assert "2.3" in body["detail"] and "1.0" in body["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("{root}/../secret.nrrd", 403),
        ("{root}/link.nrrd", 403),
        ("/etc/passwd", 403),
        ("relative.nrrd", 403),
        ("{root}/missing.nrrd", 403),
    ],
)
def test_server_side_paths_never_escape_the_allowed_roots(server, root, path, status):
    with pytest.raises(RemoteError) as refused:
        server.client.submit("superres", server_inputs={"volume": path.format(root=root)}, params=LINEAR)
    assert refused.value.status == status
    assert "secret" not in refused.value.message or "outside" in refused.value.message


def test_malformed_requests_get_one_sentence(server, volume):
    headers = _auth(server, **{"Content-Type": "application/json"})
    code, body = _raw(server, "POST", "/v1/jobs", b'{"task": "superres", ', headers)
    assert code == 400 and "not valid JSON" in body["detail"]
    code, body = _raw(server, "POST", "/v1/jobs", b"[1, 2]", headers)
    assert code == 400
    code, body = _raw(server, "POST", "/v1/jobs", b"not a tar", _auth(server, **{"Content-Type": "application/x-tar"}))
    assert code == 400 and "tar" in body["detail"]
    for request, expected in [
        ({"task": "nope"}, "no task 'nope'"),
        ({"task": "superres"}, "needs input volume"),
        ({"task": "superres", "inputs": {}, "params": {"method": "magic"}, "bogus": 1}, "Unknown request fields"),
    ]:
        code, body = _raw(server, "POST", "/v1/jobs", json.dumps(request).encode(), headers)
        assert code == 422 and expected in body["detail"]
    with pytest.raises(RemoteError, match="must be one of") as refused:
        server.client.submit("superres", uploads={"volume": volume}, params={"method": "magic"})
    assert refused.value.status == 422
    with pytest.raises(RemoteError, match="can be written as .nii.gz"):
        server.client.submit("superres", uploads={"volume": volume}, params=LINEAR, outputs={"volume": ".dcm"})
    assert not list((server.jobs_dir / ".staging").iterdir())


def test_oversized_uploads_are_refused_with_413(server):
    declared = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    declared.putrequest("POST", "/v1/jobs")
    for name, value in {**_auth(server), "Content-Type": "application/x-tar", "Content-Length": str(5 << 20)}.items():
        declared.putheader(name, value)
    declared.endheaders()
    response = declared.getresponse()
    assert response.status == 413 and "limit of 1 MiB" in json.loads(response.read())["detail"]
    declared.close()

    chunked = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    chunks = (b"\0" * (64 << 10) for _ in range(40))  # 2.5 MiB without a Content-Length
    chunked.request(
        "POST",
        "/v1/jobs",
        body=chunks,
        headers={**_auth(server), "Content-Type": "application/x-tar"},
        encode_chunked=True,
    )
    response = chunked.getresponse()
    assert response.status == 413
    chunked.close()
    assert not list((server.jobs_dir / ".staging").iterdir())


def test_a_client_that_disconnects_mid_upload_leaves_nothing(server):
    before = {status["id"] for status in server.client.jobs()}
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        head = (
            f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
            "Content-Type: application/x-tar\r\nContent-Length: 900000\r\n\r\n"
        )
        connection.sendall(head.encode() + b"\0" * 300000)
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while list((server.jobs_dir / ".staging").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list((server.jobs_dir / ".staging").iterdir())
    assert {status["id"] for status in server.client.jobs()} == before


def test_cancel_ends_a_running_job_and_a_queued_one_never_starts(server, volume):
    client = server.client
    running = client.submit("superres", uploads={"volume": volume}, params=LONG)
    queued = client.submit("superres", uploads={"volume": volume}, params=LINEAR)  # waits: one job at a time
    wait_for_state(server, running["id"], {"running"})
    assert client.cancel(queued["id"])["state"] == "cancelled"
    client.cancel(running["id"])
    status = wait_for_state(server, running["id"], {"cancelled", "failed", "succeeded"}, timeout_s=60)
    assert status["state"] == "cancelled" and status["exit_code"] == 130
    assert list(client.events(running["id"]))[-1]["event"] == "error"
    assert not list((server.jobs_dir / running["id"] / "outputs").iterdir())
    assert list(client.events(queued["id"]))[-1]["name"] == "Cancelled"
    with pytest.raises(RemoteError, match="cancelled") as refused:
        client.download(queued["id"], "volume", server.home / "never.nii.gz")
    assert refused.value.status == 404


def test_a_server_restart_mid_job_reports_the_job_failed_and_keeps_finished_results(tmp_path, volume):
    home = tmp_path / "home"
    with running_server(home) as first:
        done = first.client.submit("superres", uploads={"volume": volume}, params=LINEAR)
        assert first.client.wait(done["id"])["state"] == "succeeded"
        cut = first.client.submit("superres", uploads={"volume": volume}, params=LONG)
        child = wait_for_state(first, cut["id"], {"running"})["pid"]
        first.process.send_signal(signal.SIGKILL)  # no clean shutdown: the crash case
        first.process.wait()
    with running_server(home) as second:
        status = second.client.status(cut["id"])
        assert status["state"] == "failed" and "restarted" in status["message"]
        assert list(second.client.events(cut["id"]))[-1]["name"] == "ServerRestarted"
        second.client.download(done["id"], "volume", tmp_path / "kept.nii.gz")
        assert sitk.ReadImage(str(tmp_path / "kept.nii.gz")).GetSize() == (20, 24, 28)
    assert not _alive(child)  # the orphaned child was ended, so it writes nothing more


def test_an_archive_cannot_write_outside_its_job(server, tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as bundle:
        request = json.dumps({"task": "superres", "params": LINEAR}).encode()
        member = tarfile.TarInfo("request.json")
        member.size = len(request)
        bundle.addfile(member, io.BytesIO(request))
        escape = tarfile.TarInfo("inputs/../../../escape.nrrd")
        escape.size = 4
        bundle.addfile(escape, io.BytesIO(b"NRRD"))
    code, body = _raw(
        server, "POST", "/v1/jobs", archive.read_bytes(), _auth(server, **{"Content-Type": "application/x-tar"})
    )
    assert code == 400 and "Unexpected upload archive member" in body["detail"]
    assert not (server.jobs_dir.parent / "escape.nrrd").exists()


def test_a_clean_stop_reports_the_running_job_failed(tmp_path, volume):
    home = tmp_path / "home"
    with running_server(home) as first:
        cut = first.client.submit("superres", uploads={"volume": volume}, params=LONG)
        wait_for_state(first, cut["id"], {"running"})
    with running_server(home) as second:  # the first one got SIGTERM on leaving the block
        status = second.client.status(cut["id"])
        assert status["state"] == "failed" and "stopped" in status["message"]
        assert list(second.client.events(cut["id"]))[-1]["event"] == "error"

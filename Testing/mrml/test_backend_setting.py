"""MedFuseLib.backend_setting and .consent: the Backend setting picks the runner, consent gates every upload.

Headless on slicer-core, against a real ``medfuse serve`` on loopback: a job through the setting lands
in the scene as a local one does; without consent the server sees no job; each connection problem
(wrong token, stopped server, other API major version, TLS to a plain server, no answer) is one sentence.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from Testing.backend.images import ramp_volume
from Testing.backend.serve_harness import REPO, free_port, running_server
from Testing.mrml.conftest import import_slicer_core

slicer = import_slicer_core()

MODULE_DIR = Path(__file__).resolve().parents[2] / "Modules" / "MedFuseSuperResolution"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

from MedFuseLib.backend_setting import (  # noqa: E402  (needs slicer-core, checked above)
    LOCAL,
    SERVER,
    BackendSetting,
    backendRunner,
    checkServer,
    prepareBackendStart,
    useServer,
    useThisComputer,
)
from MedFuseLib.consent import (  # noqa: E402
    ConsentRequired,
    ServerConsents,
    consentQuestion,
    giveConsent,
    serverAddress,
    serverOrigin,
    withdrawConsent,
)
from MedFuseLib.mrml_bridge import image_to_volume_node  # noqa: E402
from MedFuseLib.remote_runner import RemoteRunner  # noqa: E402
from MedFuseLib.runner import SubprocessRunner  # noqa: E402
from MedFuseLib.settings_store import MemorySettings, defaultSettingsStore  # noqa: E402
from MedFuseSuperResolutionLib import SuperResolutionLogic  # noqa: E402

from SlicerMedFuse import serve_client  # noqa: E402

pytestmark = pytest.mark.slicer


def _one_sentence(text: str) -> None:
    assert text and "\n" not in text and "Traceback" not in text, text


# --------------------------------------------------------------------------- the setting, no server


def test_this_computer_is_the_default_and_a_server_needs_consent():
    store = MemorySettings()
    assert BackendSetting.load(store) == BackendSetting(LOCAL, "", "")
    assert isinstance(backendRunner(store), SubprocessRunner)

    useServer("https://GPU-box:8443/", "secret-token", store)
    with pytest.raises(ConsentRequired) as refused:
        backendRunner(store)
    _one_sentence(str(refused.value))
    assert "gpu-box:8443" in str(refused.value) and "giveConsent('https://gpu-box:8443')" in str(refused.value)

    giveConsent("https://gpu-box:8443", store)
    runner = backendRunner(store)
    assert isinstance(runner, RemoteRunner) and runner.client.url == "https://GPU-box:8443"

    useThisComputer(store)
    assert isinstance(backendRunner(store), SubprocessRunner)
    assert BackendSetting.load(store).url == "https://GPU-box:8443/", "the server is kept for later"


def test_consent_is_per_server_and_remembered():
    store = MemorySettings()
    consents = ServerConsents(store)
    consents.give("https://box:8443/v1")
    assert consents.given("HTTPS://BOX:8443") and ServerConsents(store).given("https://box:8443/")
    assert not consents.given("https://box:9443") and not consents.given("http://box:8443")
    assert not consents.given("https://other:8443")
    consents.give("https://box:8443")
    assert consents.origins() == ["https://box:8443"]
    withdrawConsent("https://box:8443/", store)
    assert not consents.given("https://box:8443")
    assert serverOrigin("https://box") == "https://box:443" and serverAddress("http://127.0.0.1:80") == "127.0.0.1:80"
    assert "box:8443" in consentQuestion("https://box:8443/")


def test_the_token_stays_out_of_repr_and_messages():
    setting = BackendSetting(SERVER, "https://box:8443", "secret-token")
    assert "secret-token" not in repr(setting)
    with pytest.raises(ValueError) as error:
        BackendSetting(SERVER, "http://box:8443", "secret-token").check()
    assert "https://" in str(error.value) and "secret-token" not in str(error.value)


@pytest.mark.parametrize(
    ("url", "token", "fix"),
    [("", "t", "Enter the MedFuse server's URL"), ("box:8443", "t", "https://HOST:PORT"), ("https://box", "", "token")],
)
def test_an_incomplete_server_setting_is_one_sentence(url, token, fix):
    store = MemorySettings()
    BackendSetting(SERVER, url, token).save(store)
    with pytest.raises(ValueError) as error:
        backendRunner(store)
    _one_sentence(str(error.value))
    assert fix in str(error.value)


def test_headless_the_setting_lives_in_the_process():
    assert isinstance(defaultSettingsStore(), MemorySettings)
    assert defaultSettingsStore() is defaultSettingsStore()


# --------------------------------------------------------------------------- a real server on loopback


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    with running_server(tmp_path_factory.mktemp("home"), "--max-jobs", "1") as running:
        yield running


def _server_store(server) -> MemorySettings:
    store = MemorySettings()
    useServer(server.url, server.token, store)
    return store


def test_without_consent_nothing_reaches_the_server(slicer_scene, server):
    node = image_to_volume_node(ramp_volume(), slicer_scene, "thick ramp")
    store = _server_store(server)
    before = len(server.client.jobs())
    with pytest.raises(ConsentRequired):
        SuperResolutionLogic(settings=store).process(node, device="cpu", method="linear")
    assert len(server.client.jobs()) == before

    asked: list[str] = []
    message = prepareBackendStart(lambda question: asked.append(question) or False, store)
    assert f"Nothing was sent to 127.0.0.1:{server.port}" in message and len(asked) == 1
    assert f"127.0.0.1:{server.port}" in asked[0]
    assert len(server.client.jobs()) == before and not ServerConsents(store).given(server.url)
    assert slicer_scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == 1


def test_a_job_through_the_setting_lands_in_the_scene_as_a_local_one(slicer_scene, server):
    store = _server_store(server)
    asked: list[str] = []
    assert prepareBackendStart(lambda question: asked.append(question) or True, store) == ""
    assert prepareBackendStart(lambda question: asked.append(question) or True, store) == ""
    assert len(asked) == 1, "consent is asked once per server"

    node = image_to_volume_node(ramp_volume(), slicer_scene, "thick ramp")
    before = slicer.util.arrayFromVolume(node).copy()
    jobs = len(server.client.jobs())
    remote = SuperResolutionLogic(settings=store).process(node, device="cpu", method="linear")
    local = SuperResolutionLogic(runner=SubprocessRunner()).process(node, device="cpu", method="linear")

    assert len(server.client.jobs()) == jobs + 1 and server.client.jobs()[-1]["state"] == "succeeded"
    assert remote.GetImageData().GetDimensions() == local.GetImageData().GetDimensions()
    assert remote.GetSpacing() == pytest.approx(local.GetSpacing())
    assert remote.GetOrigin() == pytest.approx(local.GetOrigin())
    np.testing.assert_allclose(slicer.util.arrayFromVolume(remote), slicer.util.arrayFromVolume(local), atol=1e-3)
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), before)

    slicer_scene.SetSaveToXMLString(1)
    slicer_scene.Commit()
    assert server.token not in slicer_scene.GetSceneXMLString(), "the token never enters a scene file"


def test_connection_problems_are_one_sentence(server, monkeypatch):
    wrong = BackendSetting(SERVER, server.url, "not-the-token")
    with pytest.raises(ValueError) as error:
        checkServer(wrong)
    _one_sentence(str(error.value))
    assert "did not accept the token" in str(error.value) and "not-the-token" not in str(error.value)

    stopped = BackendSetting(SERVER, f"http://127.0.0.1:{free_port()}", "t")
    with pytest.raises(ValueError) as error:
        checkServer(stopped)
    _one_sentence(str(error.value))
    assert str(error.value).startswith("Cannot reach the MedFuse server")

    tls = BackendSetting(SERVER, f"https://127.0.0.1:{server.port}", server.token)
    with pytest.raises(ValueError) as error:
        checkServer(tls)
    _one_sentence(str(error.value))
    assert "SSL" in str(error.value)

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        with pytest.raises(ValueError) as error:
            checkServer(BackendSetting(SERVER, f"http://127.0.0.1:{silent.getsockname()[1]}", "t"), timeout_s=1.0)
        assert time.monotonic() - started < 10
    _one_sentence(str(error.value))
    assert "timed out" in str(error.value)

    monkeypatch.setattr(serve_client, "API_VERSION", "2.0")
    with pytest.raises(ValueError) as error:
        checkServer(BackendSetting(SERVER, server.url, server.token))
    _one_sentence(str(error.value))
    assert "API 2.0" in str(error.value) and "1.0" in str(error.value)


# --------------------------------------------------------------------------- a TLS server with its own certificate


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """``medfuse serve`` over https on loopback with a self-signed certificate; yields (url, token, certificate)."""
    pytest.importorskip("fastapi")
    if shutil.which("openssl") is None:
        pytest.skip("openssl makes the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    certificate, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    home, port = folder / "home", free_port()
    command = [sys.executable, "-m", "SlicerMedFuse", "serve", "--port", str(port), "--device", "cpu"]
    command += ["--ssl-certfile", str(certificate), "--ssl-keyfile", str(key)]
    process = subprocess.Popen(command, env={**os.environ, "MEDFUSE_HOME": str(home), "PYTHONPATH": str(REPO)})
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "the TLS server did not start"
            token_file = home / "server" / "token"
            if token_file.is_file():
                token = token_file.read_text().strip()
                try:
                    checkServer(BackendSetting(SERVER, url, token, str(certificate)))
                    break
                except ValueError:
                    pass
            time.sleep(0.2)
        yield url, token, str(certificate)
    finally:
        process.terminate()
        process.wait(30)


def test_a_self_signed_server_needs_its_certificate(tls_server):
    url, token, certificate = tls_server
    with pytest.raises(ValueError) as error:
        checkServer(BackendSetting(SERVER, url, token))
    _one_sentence(str(error.value))
    assert "certificate this computer does not trust" in str(error.value)

    store = MemorySettings()
    useServer(url, token, store, caFile=certificate)
    assert prepareBackendStart(lambda question: True, store) == ""
    assert BackendSetting.load(store).caFile == certificate

    with pytest.raises(ValueError) as error:
        useServer(url, token, store, caFile=certificate + ".missing")
    assert "does not exist" in str(error.value)

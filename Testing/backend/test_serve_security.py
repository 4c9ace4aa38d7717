"""The server's defaults, without starting it: bind policy, token file, config file, constant-time token check."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from SlicerMedFuse.cli.main import main
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.serve.auth import check_bind_address, load_or_create_token, token_matches
from SlicerMedFuse.serve.config import ServerConfig, read_config_file

pytest.importorskip("fastapi")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_nothing_more(host):
    check_bind_address(host, None, None, insecure_behind_proxy=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gpu-box.example.org"])
def test_any_other_address_needs_tls_or_the_explicit_proxy_flag(host):
    with pytest.raises(UsageError, match="--ssl-certfile and --ssl-keyfile, or --insecure-behind-proxy"):
        check_bind_address(host, None, None, insecure_behind_proxy=False)
    check_bind_address(host, "cert.pem", "key.pem", insecure_behind_proxy=False)
    check_bind_address(host, None, None, insecure_behind_proxy=True)


def test_a_certificate_without_its_key_is_refused():
    with pytest.raises(UsageError, match="both"):
        check_bind_address("127.0.0.1", "cert.pem", None, insecure_behind_proxy=False)


def test_the_command_refuses_a_public_bind_in_one_sentence(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDFUSE_HOME", str(tmp_path))
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medfuse: Listening on 0.0.0.0") and "Traceback" not in error
    assert not (tmp_path / "server" / "token").exists()  # refused before anything was created


def test_the_token_is_made_once_private_and_random(tmp_path):
    token = load_or_create_token(tmp_path / "server")
    assert len(token) >= 40
    assert stat.S_IMODE((tmp_path / "server" / "token").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path / "server") == token
    assert load_or_create_token(tmp_path / "other") != token


def test_a_token_file_others_can_read_is_refused(tmp_path):
    load_or_create_token(tmp_path)
    os.chmod(tmp_path / "token", 0o644)
    with pytest.raises(UsageError, match="chmod 600"):
        load_or_create_token(tmp_path)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("Bearer secret", True),
        ("bearer secret", True),
        ("Bearer secre", False),
        ("Basic secret", False),
        ("", False),
        (None, False),
    ],
)
def test_the_token_check(header, accepted):
    assert token_matches("secret", header) is accepted


def test_the_config_file_is_checked(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(f'{{"allowed_roots": ["{tmp_path}"], "max_upload_mb": 5, "max_jobs": 2}}')
    config = ServerConfig(home=tmp_path / "home", **read_config_file(good))
    assert config.allowed_roots == (tmp_path.resolve(),) and config.max_upload_bytes == 5 << 20
    bad = tmp_path / "bad.json"
    bad.write_text('{"allowed_roots": [')
    with pytest.raises(UsageError, match="not valid JSON"):
        read_config_file(bad)
    bad.write_text('{"allowed_root": []}')
    with pytest.raises(UsageError, match="unknown keys"):
        read_config_file(bad)
    with pytest.raises(UsageError, match="not a folder"):
        ServerConfig(home=tmp_path, allowed_roots=(tmp_path / "missing",))


def test_a_request_may_pin_a_model_version_but_never_name_a_path():
    from SlicerMedFuse.serve.job_request import RequestRefused, checked_request

    request = {"task": "hemorrhage", "inputs": {}, "model": "medfuse-hemorrhage-demo@0.4.1"}
    uploads = {"ct": Path("inputs/ct.nrrd")}
    assert checked_request(request, uploads, [])["model"] == "medfuse-hemorrhage-demo@0.4.1"
    for model in ("../bundles/x", "/etc/passwd", "id@../../x"):
        with pytest.raises(RequestRefused) as refused:
            checked_request({**request, "model": model}, uploads, [])
        assert refused.value.status == 422


def test_file_parameters_stay_inside_the_server_roots(tmp_path):
    from SlicerMedFuse.serve.job_request import RequestRefused, checked_request

    root = tmp_path / "studies"
    root.mkdir()
    (root / "start.tfm").write_text("#Insight Transform File V1.0\n")
    uploads = {"fixed": Path("inputs/fixed.nrrd"), "moving": Path("inputs/moving.nrrd")}
    request = {"task": "registration", "inputs": {}}
    for params, status in (
        ({"transform_file": str(tmp_path / "anywhere.h5")}, 422),  # a write outside the job: never
        ({"initial_transform": str(tmp_path / "outside.tfm")}, 403),  # a read outside the roots
        ({"initial_transform": str(root / ".." / "outside.tfm")}, 403),
    ):
        with pytest.raises(RequestRefused) as refused:
            checked_request({**request, "params": params}, uploads, [root])
        assert refused.value.status == status
    accepted = checked_request({**request, "params": {"initial_transform": str(root / "start.tfm")}}, uploads, [root])
    assert accepted["params"]["initial_transform"] == str((root / "start.tfm").resolve())

"""The medfuse command line, run as a real subprocess: output, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import SimpleITK as sitk

from SlicerMedFuse.errors import ExitCode
from SlicerMedFuse.progress import EVENT_SCHEMA

from .images import head_ct_crop, ramp_volume, thick_slices
from .plugin_tasks import install_plugin


def medfuse(*args: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "SlicerMedFuse", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_one_sentence(result: subprocess.CompletedProcess, code: ExitCode, fragment: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medfuse: ") and fragment in lines[0], result.stderr


def test_version_tasks_and_info():
    assert medfuse("--version").stdout.startswith("SlicerMedFuse ")
    listing = medfuse("tasks")
    assert (
        listing.returncode == 0
        and "superres" in listing.stdout
        and "method (choice [sr4zct|linear|bspline|sinc]" in listing.stdout
    )
    specs = json.loads(medfuse("tasks", "--json").stdout)
    assert specs[0]["name"] == "superres" and specs[0]["inputs"][0]["role"] == "volume"
    info = json.loads(medfuse("info", "--json").stdout)
    assert info["versions"]["torch"].startswith("2.13.0") and info["devices"]["cpu"]["cores"] >= 1
    assert_one_sentence(medfuse("tasks", "nope"), ExitCode.USAGE, "no task 'nope'")


def test_run_with_json_progress_writes_output_and_report(shared_data, tmp_path):
    source = tmp_path / "thick.nrrd"
    sitk.WriteImage(thick_slices(head_ct_crop(shared_data, size=(48, 48, 30)), 2), str(source))
    out, report = tmp_path / "fine.nii.gz", tmp_path / "report.json"
    result = medfuse(
        "run",
        "superres",
        "--input",
        f"volume={source}",
        "--output",
        str(out),
        "--param",
        "method=sinc",
        "--report",
        str(report),
        "--progress",
        "json",
        "--device",
        "cpu",
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    for event in events:
        jsonschema.validate(event, EVENT_SCHEMA)
    assert events[0]["event"] == "start" and events[-1]["event"] == "result"
    fractions = [e["fraction"] for e in events if e["event"] == "progress"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # isotropic target: the in-plane 0.957 mm, adjusted so slices land exactly on the span
    assert sitk.ReadImage(str(out)).GetSpacing()[2] == pytest.approx(0.957, rel=0.01)
    assert json.loads(report.read_text(encoding="utf-8"))["method"] == "sinc"


def test_bad_input_gives_one_sentence_and_writes_nothing(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    out = tmp_path / "out.nii.gz"
    assert_one_sentence(
        medfuse("run", "superres", "-i", f"volume={bad}", "-o", str(out)), ExitCode.INPUT, "broken.nii.gz"
    )
    two_d = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.Image(16, 16, sitk.sitkInt16) + 1, str(two_d))
    assert_one_sentence(medfuse("run", "superres", "-i", f"volume={two_d}", "-o", str(out)), ExitCode.INPUT, "3D")
    assert_one_sentence(medfuse("run", "superres", "-i", f"volume={two_d}"), ExitCode.USAGE, "--output")
    assert_one_sentence(medfuse("run", "superres", "-i", "volume", "-o", str(out)), ExitCode.USAGE, "NAME=VALUE")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.nii.gz", "slice.nii.gz"]


def test_error_event_in_json_mode(tmp_path):
    result = medfuse(
        "run",
        "superres",
        "-i",
        f"volume={tmp_path / 'missing.nii.gz'}",
        "-o",
        str(tmp_path / "o.nii.gz"),
        "--progress",
        "json",
    )
    assert result.returncode == ExitCode.INPUT
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["event"] == "error" and last["code"] == ExitCode.INPUT and "missing.nii.gz" in last["message"]


def test_sigterm_cancels_cleanly(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    source = tmp_path / "ramp.nii.gz"
    sitk.WriteImage(ramp_volume(), str(source))
    out = tmp_path / "out.nii.gz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "SlicerMedFuse",
            "run",
            "site-slow",
            "-i",
            f"image={source}",
            "-o",
            str(out),
            "--progress",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the task is really running
        line = process.stdout.readline()
        if '"event":"progress"' in line and '"waiting"' in line:
            break
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == ExitCode.CANCELLED, stderr
    assert "Traceback" not in stderr and not out.exists()
    assert json.loads(stdout.splitlines()[-1])["name"] == "Cancelled"


def test_python_dash_m_matches_console_script():
    script = Path(sys.executable).with_name("medfuse")
    if not script.exists():
        pytest.skip("the medfuse console script is not installed in this environment")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout == medfuse("--version").stdout

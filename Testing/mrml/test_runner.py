"""MedFuseLib.runner: command line, event parsing, exit codes and cancelling a process tree."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest
from MedFuseLib.runner import (
    SubprocessRunner,
    backend_command,
    backend_environment,
    default_python_executable,
    run_to_completion,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            return "\nState:\tZ" not in status.read_text(encoding="utf-8")
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_backend_command_formatting() -> None:
    command = backend_command(
        "superres",
        {"volume": "/in/ct.nrrd"},
        {"volume": Path("/out/sr.nrrd")},
        {"method": "linear", "factor": 2.5, "keep": True, "off": False, "unset": None},
        device="cpu",
        python="/usr/bin/python3",
        report="/out/report.json",
    )
    assert command == [
        "/usr/bin/python3", "-m", "SlicerMedFuse", "run", "superres",
        "--input", "volume=/in/ct.nrrd",
        "--output", "volume=/out/sr.nrrd",
        "--param", "method=linear", "--param", "factor=2.5", "--param", "keep=true", "--param", "off=false",
        "--device", "cpu", "--progress", "json", "--report", "/out/report.json",
    ]  # fmt: skip
    assert backend_command("t", {}, {"o": "x"})[0] == default_python_executable() == sys.executable
    with pytest.raises(ValueError, match="--input"):
        backend_command("t", {"a=b": "x"}, {"o": "x"})


def test_backend_command_passes_the_model_only_when_given() -> None:
    base = backend_command("hemorrhage", {"ct": "/in/ct.nrrd"}, {"labels": "/out/l.nrrd"}, python="py")
    assert "--model" not in base
    assert backend_command("hemorrhage", {}, {"labels": "x"}, python="py", model="") == base[:3] + [
        "run", "hemorrhage", "--output", "labels=x", "--device", "auto", "--progress", "json",
    ]  # fmt: skip
    with_id = backend_command("hemorrhage", {}, {"labels": "x"}, python="py", model="demo@1.0.0", report="r.json")
    assert with_id[-4:] == ["--model", "demo@1.0.0", "--report", "r.json"]
    with_folder = backend_command("hemorrhage", {}, {"labels": "x"}, python="py", model=Path("/models/demo"))
    assert with_folder[-2:] == ["--model", str(Path("/models/demo"))]


def test_backend_environment_finds_backend_package() -> None:
    environment = backend_environment()
    assert environment["PYTHONUNBUFFERED"] == "1"
    first = environment["PYTHONPATH"].split(os.pathsep)[0]
    assert (Path(first) / "SlicerMedFuse" / "__init__.py").is_file()
    assert Path(first).resolve() == REPO_ROOT.resolve()


def test_events_exit_code_and_error_message(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "fake_backend.py",
        """
        import json, sys
        print(json.dumps({"event": "start", "version": 1, "task": "fake", "time": 0}))
        print("some junk text from a library")
        print(json.dumps({"event": "progress", "fraction": 0.5, "stage": "half"}))
        print("{not json")
        print("warning on stderr", file=sys.stderr)
        print(json.dumps({"event": "error", "code": 3, "name": "InputError", "message": "The image is empty; choose another."}))
        sys.exit(3)
        """,
    )
    job = SubprocessRunner().start([sys.executable, str(script)], env=backend_environment(), cwd=str(tmp_path))
    events: list[dict] = []
    assert run_to_completion(job, events.append, poll_interval=0.02) == 3
    assert job.done and job.returncode == 3
    assert [e["event"] for e in events] == ["start", "log", "progress", "log", "error"]
    assert events[1] == {"event": "log", "level": "info", "message": "some junk text from a library"}
    assert events[3]["message"] == "{not json"
    assert job.error_message == "The image is empty; choose another."
    assert job.stderr_tail == ["warning on stderr"]


def test_error_message_falls_back_to_stderr(tmp_path: Path) -> None:
    script = _script(tmp_path, "crash.py", "raise SystemExit('Traceback-ish: something broke')\n")
    job = SubprocessRunner().start([sys.executable, str(script)])
    assert job.wait(30) == 1
    assert run_to_completion(job, poll_interval=0.02) == 1
    assert "something broke" in job.error_message


@pytest.mark.skipif(os.name == "nt", reason="checks POSIX process groups")
def test_cancel_ends_the_whole_process_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = _script(
        tmp_path,
        "slow_backend.py",
        f"""
        import json, signal, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print(json.dumps({{"event": "progress", "fraction": 0.1, "stage": "sleeping"}}), flush=True)
        time.sleep(120)
        """,
    )
    job = SubprocessRunner(cancel_grace_s=1.0).start([sys.executable, str(script)])
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text(encoding="utf-8")) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pid_file.read_text(encoding="utf-8"))
    assert _alive(grandchild)
    assert not job.done

    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 0.5  # cancel does not block the caller
    assert job.wait(10) != 0
    while _alive(grandchild) and time.monotonic() - started < 10:
        time.sleep(0.05)
    assert not _alive(grandchild)
    assert run_to_completion(job, poll_interval=0.02) != 0
    assert job.cancelled and job.error_message == "The job was cancelled."

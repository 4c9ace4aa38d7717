"""MedFuseLib.install_job.InstallJob with a fake runner replaying real pip output (no network, no pip)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from MedFuseLib.install_job import InstallJob, InstallPlan
from MedFuseLib.runner import SubprocessRunner

from Testing.mrml.fake_pip import FakePipRunner, PipScript, captured_lines, captured_report, launched_module

REPO_ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = "numpy==1.26.4\nSimpleITK==2.4.1\npip==25.1\n"
PINNED = {"numpy": "1.26.4", "simpleitk": "2.4.1", "pip": "25.1"}
INSTALL_LINES = captured_lines("install_safetensors_jsonschema.stdout.txt")


def _plan(**changes) -> InstallPlan:
    fields = dict(
        requirements=("safetensors==0.8.0", "jsonschema>=4.17"),
        constraints=CONSTRAINTS,
        python="/opt/Slicer/bin/PythonSlicer",
        python_version=(3, 12, 10),
        pinned=PINNED,
        raw_progress=True,
    )
    fields.update(changes)
    return InstallPlan(**fields)


def _run(job: InstallJob, max_polls: int = 200) -> None:
    for _ in range(max_polls):
        job.poll()
        if job.done:
            return
    raise AssertionError("the job did not finish")


def _job_folder(runner: FakePipRunner) -> str:
    """The job's temporary folder: where its constraints file is."""
    options = runner.commands[0][runner.commands[0].index("install") :]
    return os.path.dirname(options[options.index("-c") + 1])


def _dry_run() -> PipScript:
    return PipScript(stdout=["Would install attrs-26.1.0 jsonschema-4.26.0 ..."], report=captured_report())


def test_resolves_first_then_installs_under_the_constraints_with_progress() -> None:
    runner = FakePipRunner(_dry_run(), PipScript(stdout=INSTALL_LINES))
    versions = {"attrs": "21.0.0"}
    job = InstallJob(_plan(), runner, version_of=versions.get)
    fractions = []
    while not job.done:
        job.poll()
        fractions.append(job.fraction)

    resolve, install = runner.commands
    assert resolve[:4] == ["/opt/Slicer/bin/PythonSlicer", "-m", "pip", "install"]
    assert "--dry-run" in resolve and "--report" in resolve
    assert resolve[-2:] == ["safetensors==0.8.0", "jsonschema>=4.17"] == install[-2:]
    assert "--dry-run" not in install and install[install.index("--progress-bar") + 1] == "raw"
    assert runner.constraints == [CONSTRAINTS, CONSTRAINTS]
    assert all(not any("torchvision" in part for part in command) for command in runner.commands)
    folder = _job_folder(runner)
    assert runner.environments[0]["TMPDIR"] == runner.environments[0]["TEMP"] == os.path.join(folder, "tmp")
    assert job.succeeded and job.error_message == "" and job.stage == "Installed"
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [p.name for p in job.planned][:2] == ["safetensors", "jsonschema"]
    assert job.versions_before["attrs"] == "21.0.0" and job.versions_before["safetensors"] is None
    assert job.messages[0].startswith("7 packages to install: safetensors 0.8.0, jsonschema 4.26.0")
    assert "jsonschema-4.26.0-py3-none-any.whl (90 kB)" in job.messages
    assert os.path.isdir(folder)
    job.cleanup()
    assert not os.path.exists(folder)


def test_an_unsatisfiable_pin_stops_before_any_download() -> None:
    failed = PipScript(stderr=captured_lines("dry_run_torch_python39.stderr.txt"), returncode=1)
    runner = FakePipRunner(failed)
    job = InstallJob(_plan(requirements=("torch==2.13.0",), python_version=(3, 9, 10)), runner)
    _run(job)
    assert len(runner.commands) == 1 and "--dry-run" in runner.commands[0]
    assert not job.succeeded and job.stage == "Failed"
    assert job.error_message == (
        "SlicerMedFuse needs Python 3.10 or later (torch 2.13 supports no older Python); this Slicer has "
        "Python 3.9.10: install 3D Slicer 5.10 or later."
    )
    job.cleanup()


def test_a_dry_run_that_would_replace_slicers_numpy_is_refused() -> None:
    report = captured_report()
    report["install"][0]["metadata"] = {"name": "numpy", "version": "2.3.0"}
    runner = FakePipRunner(PipScript(report=report))
    job = InstallJob(_plan(), runner)
    _run(job)
    assert len(runner.commands) == 1
    assert job.error_message == (
        "Installing would replace this Slicer's numpy 1.26.4 with 2.3.0, which SlicerMedFuse never does: "
        "install 3D Slicer 5.10 or later."
    )
    job.cleanup()


def test_cancel_while_downloading_kills_pip_and_says_how_to_resume() -> None:
    runner = FakePipRunner(_dry_run(), PipScript(stdout=INSTALL_LINES))
    job = InstallJob(_plan(), runner)
    while len(runner.processes) < 2 or len(job.messages) < 3:  # the install step is downloading
        job.poll()
    job.cancel()
    _run(job)
    assert runner.processes[1].cancelled
    assert job.done and not job.succeeded and job.cancelled and job.stage == "Cancelled"
    assert job.error_message == "The installation was cancelled; press Apply to resume it."
    folder = _job_folder(runner)
    job.cleanup()
    assert not os.path.exists(folder)


def test_cancel_while_pip_installs_waits_for_it() -> None:
    runner = FakePipRunner(_dry_run(), PipScript(stdout=INSTALL_LINES))
    job = InstallJob(_plan(), runner)
    while not job.stage.startswith("Installing"):
        job.poll()
    job.cancel()
    assert not runner.processes[1].cancelled
    assert "stopping now would break them" in job.messages[-1]
    _run(job)
    assert job.succeeded and job.messages[-1] == "The cancel came too late: the packages are installed."
    job.cleanup()


def test_cleanup_during_the_install_leaves_pip_to_finish() -> None:
    runner = FakePipRunner(_dry_run(), PipScript(stdout=INSTALL_LINES))
    job = InstallJob(_plan(), runner)
    while not job.stage.startswith("Installing"):
        job.poll()
    job.cleanup()  # e.g. the scene was closed
    assert not runner.processes[1].cancelled
    folder = _job_folder(runner)
    for _ in range(100):
        if not os.path.exists(folder):
            break
        time.sleep(0.01)
    assert runner.processes[1].waited and not os.path.exists(folder)


def test_a_failed_download_is_one_sentence() -> None:
    offline = [
        "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(...)': /simple/torch/",
        "ERROR: No matching distribution found for torch==2.13.0",
    ]
    runner = FakePipRunner(_dry_run(), PipScript(stdout=INSTALL_LINES[:2], stderr=offline, returncode=1))
    job = InstallJob(_plan(), runner)
    _run(job)
    assert job.error_message.startswith(
        "A package index (pypi.org, or download.pytorch.org for torch) could not be reached"
    )
    job.cleanup()


def test_torch_through_light_the_torch_bootstraps_it_and_falls_back_to_pip() -> None:
    plan = _plan(
        requirements=("torch==2.13.0", "monai==1.6.1"),
        installer_module="light_the_torch",
        bootstrap=("light-the-torch>=0.8",),
    )
    runner = FakePipRunner(_dry_run(), _dry_run(), PipScript(stdout=INSTALL_LINES))
    job = InstallJob(plan, runner)
    _run(job)
    bootstrap, resolve, install = runner.commands
    assert bootstrap[1:4] == ["-m", "pip", "install"] and bootstrap[-1] == "light-the-torch>=0.8"
    assert launched_module(resolve) == launched_module(install) == "light_the_torch"
    assert resolve[3] == install[3] == "install" and install[-2:] == ["torch==2.13.0", "monai==1.6.1"]
    assert job.succeeded
    job.cleanup()

    refused = PipScript(stderr=["ERROR: Cannot install light-the-torch because ... pip<26.1"], returncode=1)
    runner = FakePipRunner(refused, _dry_run(), PipScript(stdout=INSTALL_LINES))
    job = InstallJob(plan, runner)
    _run(job)
    assert [launched_module(command) for command in runner.commands] == ["pip", "pip", "pip"]
    assert "torch comes from PyPI instead" in job.messages[0] and job.succeeded
    job.cleanup()


def test_an_empty_plan_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one requirement"):
        InstallJob(_plan(requirements=()), FakePipRunner())


def _real_plan(*extra: str) -> InstallPlan:
    return _plan(
        python=sys.executable, installer_module="Testing.mrml.replay_pip", requirements=("jsonschema>=4.17", *extra)
    )


def test_real_child_processes_install_and_cancel() -> None:
    """The same job on the real :class:`SubprocessRunner`: pip's stand-in runs as a child process."""
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    job = InstallJob(_real_plan(), SubprocessRunner(cancel_grace_s=1.0), environment)
    assert job.wait(timeout=60) and job.fraction == 1.0 and len(job.planned) == 7
    job.cleanup()

    slow = InstallJob(_real_plan("--slow", "30"), SubprocessRunner(cancel_grace_s=1.0), environment)
    deadline = time.monotonic() + 60
    while not slow.stage.startswith("Downloading"):
        slow.poll()
        assert time.monotonic() < deadline, slow.stage
        time.sleep(0.05)
    process = slow._process.process  # the real Popen
    started = time.monotonic()
    slow.cancel()
    slow.wait(timeout=20)
    assert time.monotonic() - started < 10 and process.poll() is not None  # killed, not waited for
    assert slow.cancelled and slow.error_message == "The installation was cancelled; press Apply to resume it."
    slow.cleanup()


def test_a_dry_run_without_a_report_failed_whatever_its_exit_code() -> None:
    """Real light-the-torch output: ``python -m light_the_torch`` exited 0 although pip had failed."""
    lines = captured_lines("dry_run_light_the_torch_unreachable_index.txt")
    runner = FakePipRunner(PipScript(stdout=lines, returncode=0))
    job = InstallJob(_plan(requirements=("torch==2.13.0",), installer_module="light_the_torch"), runner)
    _run(job)
    assert len(runner.commands) == 1 and not job.succeeded
    assert job.error_message.startswith("A package index (pypi.org, or download.pytorch.org for torch) could not")
    assert job.messages == ["torch-2.13.0-cp311-cp311-manylinux_2_28_x86_64.whl (526.6 MB)"]  # shown while it ran
    job.cleanup()

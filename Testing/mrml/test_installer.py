"""MedFuseLib.installer: what is missing, how torch is installed, the floor, restarts (no network, no pip)."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import json
import sys
import types
from pathlib import Path

import pytest
from MedFuseLib.installer import (
    BACKEND_REQUIREMENTS,
    BackendInstaller,
    InstallDeclined,
    UnsupportedSlicer,
    installed_version,
)
from MedFuseLib.pip_output import PlannedInstall

from Testing.fresh_slicer import run_in_fresh_slicer
from Testing.mrml.fake_pip import FakePipRunner, PipScript, captured_lines, captured_report, launched_module

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDFUSE_LIB = REPO_ROOT / "Modules" / "MedFuseLib" / "MedFuseLib"
REQUIREMENTS = ["torch==2.13.0", "monai==1.6.1", "SimpleITK>=2.2", "numpy>=1.24", "pillow>=9"]
SLICER_HAS = {"numpy": "1.26.4", "SimpleITK": "2.4.1", "pillow": "10.0.0", "pip": "25.1"}
INSTALL_LINES = captured_lines("install_safetensors_jsonschema.stdout.txt")


class FakeEnvironment:
    """Installed versions; the fake pip run 'installs' the requirements it was given."""

    def __init__(self, versions: dict[str, str | None]) -> None:
        self.versions = dict(versions)

    def version_of(self, name: str) -> str | None:
        return self.versions.get(name)

    def installed(self, *requirements: str) -> None:
        for requirement in requirements:
            name, _, version = requirement.partition("==")
            self.versions[name.split(">=")[0]] = version or "99.0"


def _installer(environment: FakeEnvironment, runner: FakePipRunner, **options) -> BackendInstaller:
    options.setdefault("torch_from_light_the_torch", True)
    return BackendInstaller(
        runner,
        python="/opt/Slicer/bin/PythonSlicer",
        requirements=REQUIREMENTS,
        version_of=environment.version_of,
        python_version=(3, 12, 10),
        **options,
    )


def _finish(job) -> None:
    while not job.done:
        job.poll()


def test_missing_packages_are_installed_in_one_job_with_exact_torch_and_constraints() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "monai": "1.5.0"})
    runner = FakePipRunner(PipScript(), PipScript(report=captured_report()), PipScript(stdout=INSTALL_LINES))
    installer = _installer(environment, runner)
    missing = installer.missing_requirements()
    assert missing == ["torch==2.13.0", "monai==1.6.1"]
    message = installer.confirmation_message(missing)
    assert "torch==2.13.0" in message and "GB" in message and "background" in message

    job = installer.start(missing)
    _finish(job)
    environment.installed(*missing)

    bootstrap, resolve, install = runner.commands
    assert bootstrap[2:] == [
        "pip",
        "install",
        "--disable-pip-version-check",
        "-c",
        bootstrap[-2],
        "light-the-torch>=0.8",
    ]
    assert launched_module(resolve) == launched_module(install) == "light_the_torch"
    assert install[-2:] == ["torch==2.13.0", "monai==1.6.1"]
    assert not any("torchvision" in part for command in runner.commands for part in command)
    assert runner.constraints == ["numpy==1.26.4\nSimpleITK==2.4.1\npip==25.1\n"] * 3
    assert install[install.index("--progress-bar") + 1] == "raw"  # pip 25.1 prints byte progress
    outcome = installer.outcome(job)
    assert outcome.installed == ["torch==2.13.0", "monai==1.6.1"] and not outcome.restart_required
    assert installer.missing_requirements() == []
    job.cleanup()


def test_the_pytorch_extension_is_present_but_its_blocking_installer_is_not_called(monkeypatch) -> None:
    calls: list[tuple] = []

    class PyTorchUtilsLogic:
        def installTorch(self, *args, **kwargs):  # noqa: N802 (Slicer's name)
            calls.append((args, kwargs))

    extension = types.ModuleType("PyTorchUtils")
    extension.__spec__ = importlib.machinery.ModuleSpec("PyTorchUtils", None)
    extension.PyTorchUtilsLogic = PyTorchUtilsLogic
    monkeypatch.setitem(sys.modules, "PyTorchUtils", extension)
    environment = FakeEnvironment({**SLICER_HAS, "monai": "1.6.1", "light-the-torch": "0.8.1"})
    installer = BackendInstaller(
        FakePipRunner(), requirements=REQUIREMENTS, version_of=environment.version_of, python_version=(3, 12, 10)
    )
    plan = installer.plan(installer.missing_requirements())
    assert installer.torch_from_light_the_torch and plan.installer_module == "light_the_torch"
    assert plan.requirements == ("torch==2.13.0",) and plan.bootstrap == ()  # light-the-torch is there already
    assert calls == []
    environment.versions["light-the-torch"] = "0.7.5"  # installed by an older PyTorch extension: upgraded first
    assert installer.plan(["torch==2.13.0"]).bootstrap == ("light-the-torch>=0.8",)


def test_without_the_pytorch_extension_torch_comes_from_pypi_with_pip() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "monai": "1.6.1", "pip": "23.3"})
    plan = _installer(environment, FakePipRunner(), torch_from_light_the_torch=False).plan(["torch==2.13.0"])
    assert plan.installer_module == "pip" and plan.bootstrap == ()
    assert not plan.raw_progress  # Slicer's pip 23.3 has no raw progress bar


def test_a_python_older_than_310_is_refused_before_anything_runs() -> None:
    runner = FakePipRunner()
    installer = BackendInstaller(runner, requirements=REQUIREMENTS, version_of={}.get, python_version=(3, 9, 10))
    expected = (
        "SlicerMedFuse needs Python 3.10 or later (torch 2.13 supports no older Python); this Slicer has "
        "Python 3.9.10: install 3D Slicer 5.10 or later."
    )
    with pytest.raises(UnsupportedSlicer) as raised:
        installer.start()
    assert str(raised.value) == expected
    with pytest.raises(UnsupportedSlicer):
        installer.install(lambda message: True)
    assert runner.commands == []


def test_restart_only_when_an_imported_distribution_changed_version() -> None:
    installer = BackendInstaller(FakePipRunner(), loaded_modules={"typing_extensions": object(), "numpy": object()})
    fresh = [PlannedInstall("torch", "2.13.0", True), PlannedInstall("monai", "1.6.1", True)]
    assert not installer.restart_required(fresh, {"torch": None, "monai": None})
    upgraded = [*fresh, PlannedInstall("typing_extensions", "4.16.0", False)]
    assert installer.restart_required(upgraded, {"typing-extensions": "4.12.0"})
    assert not installer.restart_required(upgraded, {"typing-extensions": "4.16.0"})  # same version
    not_imported = [PlannedInstall("rpds-py", "2026.9.1", False)]
    assert not installer.restart_required(not_imported, {"rpds-py": "0.20.0"})


def test_blocking_install_for_the_console() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "torch": "2.13.0+cpu"})
    runner = FakePipRunner(PipScript(report=captured_report()), PipScript(stdout=INSTALL_LINES))

    class InstallingRunner(FakePipRunner):
        def start(self, command, *, env=None, cwd=None):
            if "--dry-run" not in command:
                environment.installed("monai==1.6.1")
            return runner.start(command, env=env, cwd=cwd)

    installer = _installer(environment, InstallingRunner())
    outcome = installer.install(lambda message: True, timeout=10)
    assert outcome.installed == ["monai==1.6.1"] and not outcome.restart_required
    assert installer.install(lambda message: pytest.fail("asked although nothing is missing")).installed == []


def test_declined_and_failed_installs_are_sentences() -> None:
    environment = FakeEnvironment(SLICER_HAS)
    with pytest.raises(InstallDeclined, match="cannot run without torch==2.13.0"):
        _installer(environment, FakePipRunner()).install(lambda message: False)
    failed = PipScript(stderr=captured_lines("dry_run_torch_python39.stderr.txt"), returncode=1)
    with pytest.raises(RuntimeError, match="^No build of torch==2.13.0 for Python 3.12"):
        _installer(environment, FakePipRunner(PipScript(), failed)).install(lambda message: True, timeout=10)


def test_still_missing_after_the_job_is_an_error() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "torch": "2.13.0"})
    runner = FakePipRunner(PipScript(report=captured_report()), PipScript(stdout=INSTALL_LINES))
    installer = _installer(environment, runner)
    job = installer.start()
    _finish(job)
    with pytest.raises(RuntimeError, match="still missing after the installation: monai==1.6.1; restart Slicer"):
        installer.outcome(job)
    job.cleanup()


def test_constraints_pin_the_real_installed_numpy_simpleitk_and_pip() -> None:
    text = BackendInstaller(FakePipRunner()).constraints_text()
    assert text.splitlines() == [
        f"{name}=={importlib.metadata.version(name)}" for name in ("numpy", "SimpleITK", "pip")
    ]
    assert installed_version("surely-not-a-real-distribution-medfuse") is None


def test_a_fresh_slicer_misses_exactly_torch_monai_safetensors_and_jsonschema() -> None:
    result = run_in_fresh_slicer(
        """
        import json
        from MedFuseLib.installer import BackendInstaller
        print(json.dumps(BackendInstaller().missing_requirements()))
        """
    )
    assert result.returncode == 0, result.stderr
    missing = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(requirement.split("=")[0].split(">")[0] for requirement in missing) == [
        "jsonschema",
        "monai",
        "safetensors",
        "torch",
    ]
    assert set(missing) <= set(BACKEND_REQUIREMENTS)


def test_backend_requirements_match_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert list(BACKEND_REQUIREMENTS) == pyproject["project"]["dependencies"]
    default = BackendInstaller.default_requirements()
    assert sorted(default) == sorted(pyproject["project"]["dependencies"])  # installed metadata, or the constant


def test_the_backend_never_imports_torchvision() -> None:
    for path in sorted((REPO_ROOT / "SlicerMedFuse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(name.split(".")[0] == "torchvision" for name in names), path


@pytest.mark.parametrize("name", ["installer", "install_job", "pip_output", "package_versions", "runner"])
def test_the_installer_parses_as_python_39(name: str) -> None:
    """An old Slicer (Python 3.9) must import the installer to show which Slicer it needs."""
    ast.parse((MEDFUSE_LIB / f"{name}.py").read_text(encoding="utf-8"), feature_version=(3, 9))


def test_simple_specifier_fallback() -> None:
    from MedFuseLib import package_versions as module

    assert module._satisfies_simple("2.13.0+cu128", "==2.13.0")
    assert module._satisfies_simple("1.26.4", ">=1.24,<2")
    assert not module._satisfies_simple("1.23.5", ">=1.24")
    assert not module._satisfies_simple("2.0", "!=2.0.0")

"""MedFuseLib.installer with fake pip / torch installers (no network, no Slicer application)."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest
from MedFuseLib.installer import (
    BACKEND_REQUIREMENTS,
    BackendInstaller,
    InstallDeclined,
    installed_version,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeEnvironment:
    """Installed versions plus fake pip and torch installers that record calls and 'install'."""

    def __init__(self, versions: dict[str, str | None]) -> None:
        self.versions = dict(versions)
        self.pip_calls: list[list[str]] = []
        self.constraints: list[str] = []
        self.torch_calls: list[str] = []

    def version_of(self, name: str) -> str | None:
        return self.versions.get(name)

    def pip(self, args: list[str]) -> None:
        self.pip_calls.append(list(args))
        if "-c" in args:
            self.constraints.append(Path(args[args.index("-c") + 1]).read_text(encoding="utf-8"))
        for requirement in args:
            if requirement.startswith("-") or Path(requirement).exists():
                continue
            name, _, version = requirement.partition("==")
            self.versions[name.split(">=")[0]] = version or "99.0"

    def torch(self, version_requirement: str) -> None:
        self.torch_calls.append(version_requirement)
        self.versions["torch"] = version_requirement.lstrip("=") + "+cpu"


REQUIREMENTS = ["torch==2.13.0", "monai==1.6.1", "SimpleITK>=2.2", "numpy>=1.24", "pillow>=9"]
SLICER_HAS = {"numpy": "1.26.4", "SimpleITK": "2.4.1", "pillow": "10.0.0"}


def _installer(environment: FakeEnvironment, with_torch: bool = True) -> BackendInstaller:
    return BackendInstaller(
        environment.pip,
        environment.torch if with_torch else None,
        requirements=REQUIREMENTS,
        version_of=environment.version_of,
    )


def _never_asked(message: str) -> bool:
    raise AssertionError(f"nothing is missing, yet the user was asked: {message}")


def test_nothing_missing_installs_nothing() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "torch": "2.13.0+cu128", "monai": "1.6.1"})
    installer = _installer(environment)
    assert installer.missing_requirements() == []
    outcome = installer.install(_never_asked)
    assert outcome.installed == [] and not outcome.restart_required
    assert environment.pip_calls == [] and environment.torch_calls == []


def test_missing_packages_are_confirmed_then_installed_with_constraints() -> None:
    environment = FakeEnvironment({**SLICER_HAS, "monai": "1.5.0"})
    installer = _installer(environment)
    assert installer.missing_requirements() == ["torch==2.13.0", "monai==1.6.1"]
    questions: list[str] = []
    outcome = installer.install(lambda message: questions.append(message) or True)

    assert len(questions) == 1 and "torch==2.13.0" in questions[0] and "monai==1.6.1" in questions[0]
    assert "GB" in questions[0]
    assert environment.torch_calls == ["==2.13.0"]
    assert len(environment.pip_calls) == 1 and environment.pip_calls[0][0] == "-c"
    assert environment.pip_calls[0][2:] == ["monai==1.6.1"]
    assert environment.constraints == ["numpy==1.26.4\nSimpleITK==2.4.1\n"]
    assert not Path(environment.pip_calls[0][1]).exists()  # the constraints file is temporary
    assert outcome.installed == ["torch==2.13.0", "monai==1.6.1"]
    assert installer.missing_requirements() == []


def test_torch_goes_through_pip_without_the_pytorch_extension() -> None:
    environment = FakeEnvironment(dict(SLICER_HAS, monai="1.6.1"))
    _installer(environment, with_torch=False).install(lambda message: True)
    assert environment.torch_calls == []
    assert environment.pip_calls[0][2:] == ["torch==2.13.0"]


def test_declined_raises_a_clear_error() -> None:
    environment = FakeEnvironment(SLICER_HAS)
    with pytest.raises(InstallDeclined, match="cannot run without torch==2.13.0"):
        _installer(environment).install(lambda message: False)
    assert environment.pip_calls == [] and environment.torch_calls == []


def test_still_missing_after_install_is_an_error() -> None:
    environment = FakeEnvironment(dict(SLICER_HAS, torch="2.13.0", monai="1.6.1", pillow=None))
    installer = BackendInstaller(lambda args: None, requirements=REQUIREMENTS, version_of=environment.version_of)
    with pytest.raises(RuntimeError, match="still missing.*pillow"):
        installer.install(lambda message: True)


def test_upgrading_an_imported_module_requires_restart() -> None:
    assert "pytest" in sys.modules
    environment = FakeEnvironment({"pytest": "1.0"})
    installer = BackendInstaller(environment.pip, requirements=["pytest>=2"], version_of=environment.version_of)
    outcome = installer.install(lambda message: True)
    assert outcome.installed == ["pytest>=2"] and outcome.restart_required


def test_constraints_pin_the_real_installed_numpy_and_simpleitk() -> None:
    text = BackendInstaller(lambda args: None).constraints_text()
    numpy_version = importlib.metadata.version("numpy")
    simpleitk_version = importlib.metadata.version("SimpleITK")
    assert text.splitlines() == [f"numpy=={numpy_version}", f"SimpleITK=={simpleitk_version}"]
    assert installed_version("surely-not-a-real-distribution-medfuse") is None


def test_backend_requirements_match_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert list(BACKEND_REQUIREMENTS) == pyproject["project"]["dependencies"]
    default = BackendInstaller.default_requirements()
    assert sorted(default) == sorted(pyproject["project"]["dependencies"])  # installed metadata, or the constant


def test_simple_specifier_fallback() -> None:
    from MedFuseLib import installer as module

    assert module._satisfies_simple("2.13.0+cu128", "==2.13.0")
    assert module._satisfies_simple("1.26.4", ">=1.24,<2")
    assert not module._satisfies_simple("1.23.5", ">=1.24")
    assert not module._satisfies_simple("2.0", "!=2.0.0")

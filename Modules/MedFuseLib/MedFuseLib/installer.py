"""First-use installation of the backend's Python requirements into Slicer's Python.

:class:`BackendInstaller` says which requirements are missing, what to ask the user, and starts an
:class:`MedFuseLib.install_job.InstallJob` that installs them in the background (pip in a child
process, a dry-run first, progress and cancel). After the job, :meth:`BackendInstaller.outcome`
checks that nothing is missing any more and whether Slicer must restart.

**How torch is installed.** The PyTorch extension's ``PyTorchUtilsLogic.installTorch(askConfirmation,
forceComputationBackend, torchVersionRequirement, torchvisionVersionRequirement)`` is not called: it
blocks Slicer while it runs, always installs torchvision as well (its pip arguments are
``torch<req> torchvision<req>``; the backend never imports torchvision), and takes no constraints, so
it may replace Slicer's numpy. What it does underneath is run light-the-torch (``python -m
light_the_torch install``), which is pip that takes torch from PyTorch's own index for this computer's
CUDA driver, or the CPU build. The installer runs that same tool itself, in the background, with the
exact torch version, without torchvision, and with the constraints file, in one resolution together
with the other requirements. light-the-torch is installed first when missing; where it cannot be
installed (it pins pip), or when the PyTorch extension is absent, torch comes from PyPI.

**What is never replaced.** numpy, SimpleITK and pip belong to Slicer: the constraints file pins
them to the installed versions, and a dry-run that would still replace one is refused.

Written for Python 3.9 as well (an old Slicer imports this to say which Slicer it needs):
:func:`python_floor_message` is that sentence.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence

from MedFuseLib.install_job import InstallJob, InstallPlan
from MedFuseLib.package_versions import (
    forget_installed,
    import_names,
    installed_version,
    marker_applies,
    normalize_name,
    satisfies,
    split_requirement,
)
from MedFuseLib.pip_output import PlannedInstall, python_floor_message
from MedFuseLib.runner import ProcessRunner, SubprocessRunner, default_python_executable

__all__ = [
    "BACKEND_REQUIREMENTS",
    "BackendInstaller",
    "InstallDeclined",
    "InstallOutcome",
    "UnsupportedSlicer",
    "installed_version",
    "python_floor_message",
]

#: The backend's requirements when the ``slicer-medfuse`` distribution is not installed (inside Slicer
#: the backend ships as plain files). Must equal pyproject.toml [project].dependencies (a test checks).
BACKEND_REQUIREMENTS: tuple[str, ...] = (
    "torch==2.13.0",
    "monai==1.6.1",
    "SimpleITK>=2.2",
    "numpy>=1.24",
    "safetensors==0.8.0",
    "jsonschema>=4.17",
    "pillow>=9",
)
BACKEND_DISTRIBUTION = "slicer-medfuse"
#: Packages that belong to Slicer: pinned to the installed version while installing, never replaced.
SLICER_OWNED = ("numpy", "SimpleITK", "pip")
#: light-the-torch from 0.8 knows the CUDA 12 and 13 drivers (older releases fall back to the CPU build).
LIGHT_THE_TORCH = "light-the-torch>=0.8"
#: pip prints ``Progress DONE of TOTAL`` lines with ``--progress-bar raw`` from this version on.
RAW_PROGRESS_PIP = "24.1"


@dataclasses.dataclass(frozen=True)
class InstallOutcome:
    """What an installation did.

    Attributes:
        installed: the requirements that were missing and are now installed.
        restart_required: a distribution that this Slicer had already imported changed version.
    """

    installed: list[str]
    restart_required: bool


class InstallDeclined(RuntimeError):
    """The user declined installing the packages the module needs."""


class UnsupportedSlicer(RuntimeError):
    """This Slicer's Python is older than the backend supports (the message names the fix)."""


def _python_module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class BackendInstaller:
    """Checks and installs the backend's requirements.

    Args:
        runner: starts the pip processes (default :class:`MedFuseLib.runner.SubprocessRunner`).
        python: interpreter to install into (default: Slicer's ``PythonSlicer``, else ``sys.executable``).
        requirements: requirement strings; default :meth:`default_requirements`.
        version_of: distribution name -> installed (and importable) version or None
            (default :func:`MedFuseLib.package_versions.installed_version`).
        python_version: ``sys.version_info`` of that interpreter (default this process's, which is
            the same Python inside Slicer).
        torch_from_light_the_torch: install torch through light-the-torch (see the module doc);
            default: when the PyTorch extension or light-the-torch is present.
        loaded_modules: names of the modules imported in this process (default ``sys.modules``).
    """

    def __init__(
        self,
        runner: ProcessRunner | None = None,
        *,
        python: str | None = None,
        requirements: Sequence[str] | None = None,
        version_of: Callable[[str], str | None] = installed_version,
        python_version: Sequence[int] | None = None,
        torch_from_light_the_torch: bool | None = None,
        loaded_modules: Mapping[str, object] | None = None,
    ) -> None:
        self.runner = runner if runner is not None else SubprocessRunner()
        self._python = python
        self._requirements = list(requirements) if requirements is not None else None
        self.version_of = version_of
        self.python_version = tuple(python_version if python_version is not None else sys.version_info[:3])
        if torch_from_light_the_torch is None:
            torch_from_light_the_torch = _python_module_present("PyTorchUtils") or _python_module_present(
                "light_the_torch"
            )
        self.torch_from_light_the_torch = torch_from_light_the_torch
        self.loaded_modules = loaded_modules if loaded_modules is not None else sys.modules

    @classmethod
    def for_slicer(cls) -> BackendInstaller:
        """The installer for the running Slicer (its PythonSlicer, its packages)."""
        return cls()

    # --- what is missing ---------------------------------------------------------------------------
    @staticmethod
    def default_requirements() -> list[str]:
        """From the installed ``slicer-medfuse`` metadata, else :data:`BACKEND_REQUIREMENTS`."""
        try:
            declared = importlib.metadata.requires(BACKEND_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            declared = None
        if not declared:
            return list(BACKEND_REQUIREMENTS)
        return [requirement for requirement in declared if marker_applies(split_requirement(requirement)[2])]

    def requirements(self) -> list[str]:
        return list(self._requirements) if self._requirements is not None else self.default_requirements()

    def check_python(self) -> None:
        """Raise :class:`UnsupportedSlicer` (one sentence naming the fix) on a Python older than 3.10."""
        message = python_floor_message(self.python_version)
        if message is not None:
            raise UnsupportedSlicer(message)

    def missing_requirements(self) -> list[str]:
        """Requirements that are not installed, cannot be imported, or whose version does not match."""
        missing = []
        for requirement in self.requirements():
            name, specifier, marker = split_requirement(requirement)
            if not marker_applies(marker):
                continue
            version = self.version_of(name)
            if version is None or not satisfies(version, specifier):
                missing.append(requirement)
        return missing

    def pinned_versions(self) -> dict[str, str]:
        """Normalized name -> installed version of Slicer's own packages (:data:`SLICER_OWNED`)."""
        pinned = {}
        for name in SLICER_OWNED:
            version = self.version_of(name)
            if version is not None:
                pinned[normalize_name(name)] = version
        return pinned

    def constraints_text(self) -> str:
        """pip constraints pinning Slicer's own packages to their installed versions."""
        lines = [f"{name}=={self.version_of(name)}" for name in SLICER_OWNED if self.version_of(name) is not None]
        return "\n".join(lines) + "\n"

    @staticmethod
    def confirmation_message(missing: Sequence[str]) -> str:
        """The question the user answers before anything is downloaded."""
        needs_torch = any(normalize_name(split_requirement(r)[0]) == "torch" for r in missing)
        size = "about 1-3 GB to download (PyTorch)" if needs_torch else "a few hundred MB at most"
        return (
            "SlicerMedFuse needs these Python packages, which are not installed yet:\n  "
            + "\n  ".join(missing)
            + f"\n\nInstall them now? This needs an internet connection and {size}; it runs in the background "
            "and can take several minutes. Slicer's own numpy and SimpleITK are not changed."
        )

    # --- installing --------------------------------------------------------------------------------
    def plan(self, missing: Sequence[str]) -> InstallPlan:
        """How ``missing`` gets installed (which tool, which constraints)."""
        needs_torch = any(normalize_name(split_requirement(r)[0]) == "torch" for r in missing)
        use_ltt = needs_torch and self.torch_from_light_the_torch
        ltt_name, ltt_wanted, _ = split_requirement(LIGHT_THE_TORCH)
        ltt_version = self.version_of(ltt_name)
        ltt_fits = ltt_version is not None and satisfies(ltt_version, ltt_wanted)
        bootstrap = (LIGHT_THE_TORCH,) if use_ltt and not ltt_fits else ()
        pip_version = self.version_of("pip")
        return InstallPlan(
            requirements=tuple(missing),
            constraints=self.constraints_text(),
            python=self._python or default_python_executable(),
            python_version=self.python_version,
            pinned=self.pinned_versions(),
            installer_module="light_the_torch" if use_ltt else "pip",
            bootstrap=bootstrap,
            raw_progress=pip_version is not None and satisfies(pip_version, f">={RAW_PROGRESS_PIP}"),
        )

    def start(self, missing: Sequence[str] | None = None) -> InstallJob:
        """Start installing (returns at once; poll the job).

        Args:
            missing: what to install; default :meth:`missing_requirements`.

        Raises:
            UnsupportedSlicer: Slicer's Python is too old.
            ValueError: nothing is missing.
        """
        self.check_python()
        missing = list(missing) if missing is not None else self.missing_requirements()
        if not missing:
            raise ValueError("nothing is missing: there is nothing to install")
        return InstallJob(self.plan(missing), self.runner, version_of=self.version_of)

    def outcome(self, job: InstallJob, versions_before: Mapping[str, str | None] | None = None) -> InstallOutcome:
        """Check a succeeded job's result.

        Args:
            job: a done, succeeded job from :meth:`start`.
            versions_before: normalized name -> version before pip installed anything, of every
                distribution the dry-run planned; default ``job.versions_before``.

        Raises:
            RuntimeError: packages are still missing after installing.
        """
        forget_installed()
        still_missing = self.missing_requirements()
        if still_missing:
            raise RuntimeError(
                "These packages are still missing after the installation: "
                + ", ".join(still_missing)
                + "; restart Slicer and press Apply again."
            )
        before = dict(versions_before if versions_before is not None else job.versions_before)
        restart = self.restart_required(job.planned, before)
        return InstallOutcome(installed=list(job.plan.requirements), restart_required=restart)

    def restart_required(self, planned: Sequence[PlannedInstall], before: Mapping[str, str | None]) -> bool:
        """True when pip changed the version of a distribution whose modules this process has imported.

        A fresh install of a package never imported here (torch, monai on first use) needs no restart.
        """
        for item in planned:
            old = before.get(normalize_name(item.name))
            if old is None or old == item.version:
                continue
            if any(module in self.loaded_modules for module in import_names(item.name)):
                return True
        return False

    def install(self, confirm: Callable[[str], bool], timeout: float | None = None) -> InstallOutcome:
        """Ask once, then install and wait (for the Python console and self-tests; the panel polls instead).

        Raises:
            UnsupportedSlicer: Slicer's Python is too old.
            InstallDeclined: the user said no.
            RuntimeError: pip failed (the sentence names the fix) or packages are still missing.
        """
        self.check_python()
        missing = self.missing_requirements()
        if not missing:
            return InstallOutcome(installed=[], restart_required=False)
        if not confirm(self.confirmation_message(missing)):
            raise InstallDeclined(
                "SlicerMedFuse cannot run without " + ", ".join(missing) + "; apply again and accept the installation."
            )
        job = self.start(missing)
        try:
            if not job.wait(timeout):
                raise RuntimeError(job.error_message)
            return self.outcome(job)
        finally:
            job.cleanup()

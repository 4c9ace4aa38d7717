"""First-use installation of the backend's Python requirements into Slicer's Python.

:class:`BackendInstaller` finds which requirements are missing, asks the user once, installs torch
through the PyTorch extension when it is there (it picks the right CUDA/CPU build) and the rest
with pip under a constraint that pins Slicer's own numpy and SimpleITK, so pip never replaces them.
The pip and torch installers are injected (:class:`PipInstaller`, :class:`TorchInstaller`) so the
whole flow is testable outside Slicer; :meth:`BackendInstaller.for_slicer` wires the real ones,
which import Slicer modules only when called.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = [
    "BACKEND_REQUIREMENTS",
    "BackendInstaller",
    "InstallDeclined",
    "InstallOutcome",
    "PipInstaller",
    "TorchInstaller",
    "installed_version",
    "pytorch_extension_installer",
    "slicer_pip_install",
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
#: Packages that belong to Slicer: pinned to the installed version while installing.
SLICER_OWNED = ("numpy", "SimpleITK")


class PipInstaller(Protocol):
    """Runs ``pip install`` with the given arguments (requirements and options such as ``-c FILE``)."""

    def __call__(self, args: list[str]) -> None: ...


class TorchInstaller(Protocol):
    """Installs torch for this machine's GPU/CPU, given a version specifier such as ``==2.13.0``."""

    def __call__(self, version_requirement: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class InstallOutcome:
    """What :meth:`BackendInstaller.install` did."""

    installed: list[str]
    restart_required: bool


class InstallDeclined(RuntimeError):
    """The user declined installing the packages the module needs."""


# --- versions and specifiers ----------------------------------------------------------------------
def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution (pip name), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def _split(requirement: str) -> tuple[str, str, str]:
    """(name, specifier text, marker text) of a requirement string."""
    body, _, marker = requirement.partition(";")
    match = _NAME.match(body)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1), match.group(2).strip(), marker.strip()


def _version_tuple(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers)


def _satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets ``specifier`` (``packaging`` when importable, else ==, >=, <=, >, <, !=)."""
    if not specifier:
        return True
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return _satisfies_simple(version, specifier)
    return SpecifierSet(specifier).contains(version, prereleases=True)


def _satisfies_simple(version: str, specifier: str) -> bool:
    have = _version_tuple(version)
    for clause in specifier.split(","):
        match = re.match(r"\s*(==|!=|>=|<=|>|<|~=)\s*([^\s]+)", clause)
        if match is None:
            continue
        operator, wanted_text = match.groups()
        wanted = _version_tuple(wanted_text.rstrip(".*"))
        width = max(len(have), len(wanted))
        a, b = have + (0,) * (width - len(have)), wanted + (0,) * (width - len(wanted))
        ok = {
            "==": a == b,
            "!=": a != b,
            ">=": a >= b,
            "<=": a <= b,
            ">": a > b,
            "<": a < b,
            "~=": a >= b,
        }[operator]
        if not ok:
            return False
    return True


def _marker_applies(marker: str) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:
        return "extra" not in marker  # without packaging: skip only extras
    return Marker(marker).evaluate({"extra": ""})


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the Slicer collaborators (imported lazily: they need the running application) ----------------
def slicer_pip_install(args: list[str]) -> None:
    """``pip install ARGS`` in Slicer's Python: ``slicer.packaging`` (Slicer >= 2026) or ``slicer.util``."""
    try:
        import slicer.packaging as packaging
    except ImportError:
        packaging = None
    if packaging is not None and hasattr(packaging, "pip_install"):
        packaging.pip_install(list(args))
        return
    import slicer.util

    slicer.util.pip_install(list(args))


def pytorch_extension_installer() -> TorchInstaller | None:
    """A :class:`TorchInstaller` that uses the PyTorch extension, or None when it is not installed."""
    try:
        import PyTorchUtils
    except ImportError:
        return None

    def install(version_requirement: str) -> None:
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
            askConfirmation=False, torchVersionRequirement=version_requirement
        )
        if torch is None:
            raise RuntimeError("The PyTorch extension did not install torch; install it from the PyTorch Utils module.")

    return install


# --- the installer --------------------------------------------------------------------------------
class BackendInstaller:
    """Checks and installs the backend's requirements.

    Args:
        pip: runs ``pip install`` (e.g. :func:`slicer_pip_install`).
        torch_installer: installs torch (e.g. :func:`pytorch_extension_installer`); None: torch via pip.
        requirements: requirement strings; default :meth:`default_requirements`.
        version_of: distribution name -> installed version or None (default :func:`installed_version`).
    """

    def __init__(
        self,
        pip: PipInstaller,
        torch_installer: TorchInstaller | None = None,
        *,
        requirements: Sequence[str] | None = None,
        version_of: Callable[[str], str | None] = installed_version,
    ) -> None:
        self.pip = pip
        self.torch_installer = torch_installer
        self._requirements = list(requirements) if requirements is not None else None
        self.version_of = version_of

    @classmethod
    def for_slicer(cls) -> BackendInstaller:
        """The installer wired to Slicer's pip and, when present, the PyTorch extension."""
        return cls(slicer_pip_install, pytorch_extension_installer())

    @staticmethod
    def default_requirements() -> list[str]:
        """From the installed ``slicer-medfuse`` metadata, else :data:`BACKEND_REQUIREMENTS`."""
        try:
            declared = importlib.metadata.requires(BACKEND_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            declared = None
        if not declared:
            return list(BACKEND_REQUIREMENTS)
        return [requirement for requirement in declared if _marker_applies(_split(requirement)[2])]

    def requirements(self) -> list[str]:
        return list(self._requirements) if self._requirements is not None else self.default_requirements()

    def missing_requirements(self) -> list[str]:
        """Requirements that are not installed or whose installed version does not match."""
        missing = []
        for requirement in self.requirements():
            name, specifier, marker = _split(requirement)
            if not _marker_applies(marker):
                continue
            version = self.version_of(name)
            if version is None or not _satisfies(version, specifier):
                missing.append(requirement)
        return missing

    def constraints_text(self) -> str:
        """pip constraints pinning Slicer's own packages to their installed versions."""
        lines = []
        for name in SLICER_OWNED:
            version = self.version_of(name)
            if version is not None:
                lines.append(f"{name}=={version}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _confirmation_message(missing: Sequence[str]) -> str:
        needs_torch = any(_normalize(_split(r)[0]) == "torch" for r in missing)
        size = "about 1-3 GB to download (PyTorch)" if needs_torch else "a few hundred MB at most"
        return (
            "SlicerMedFuse needs these Python packages, which are not installed yet:\n  "
            + "\n  ".join(missing)
            + f"\n\nInstall them now? This needs an internet connection and {size}; it can take several minutes."
        )

    def install(self, confirm: Callable[[str], bool]) -> InstallOutcome:
        """Install what is missing after asking ``confirm`` once (not at all when nothing is missing).

        Raises:
            InstallDeclined: the user said no.
            RuntimeError: packages are still missing after installing.
        """
        missing = self.missing_requirements()
        if not missing:
            return InstallOutcome(installed=[], restart_required=False)
        if not confirm(self._confirmation_message(missing)):
            raise InstallDeclined(
                "SlicerMedFuse cannot run without " + ", ".join(missing) + "; apply again and accept the installation."
            )
        before = {_split(r)[0]: self.version_of(_split(r)[0]) for r in missing}
        torch_requirements = [r for r in missing if _normalize(_split(r)[0]) == "torch"]
        others = [r for r in missing if r not in torch_requirements]
        if torch_requirements and self.torch_installer is not None:
            for requirement in torch_requirements:
                self.torch_installer(_split(requirement)[1])
        else:
            others = torch_requirements + others
        if others:
            self._pip_with_constraints(others)
        importlib.invalidate_caches()
        still_missing = self.missing_requirements()
        if still_missing:
            raise RuntimeError("These packages are still missing after installation: " + ", ".join(still_missing) + ".")
        return InstallOutcome(installed=list(missing), restart_required=self._upgraded_loaded_module(before))

    def _pip_with_constraints(self, requirements: Sequence[str]) -> None:
        handle, path = tempfile.mkstemp(prefix="medfuse-constraints-", suffix=".txt")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(self.constraints_text())
            self.pip(["-c", path, *requirements])
        finally:
            os.unlink(path)

    def _upgraded_loaded_module(self, before: dict[str, str | None]) -> bool:
        """True when a distribution that was installed and already imported changed version."""
        try:
            modules_of = importlib.metadata.packages_distributions()
        except Exception:  # metadata of some distribution is broken: fall back to the names alone
            modules_of = {}
        for name, old_version in before.items():
            if old_version is None or self.version_of(name) == old_version:
                continue
            modules = [module for module, dists in modules_of.items() if _normalize(name) in map(_normalize, dists)]
            modules = modules or [name.replace("-", "_")]
            if any(module in sys.modules for module in modules):
                return True
        return False

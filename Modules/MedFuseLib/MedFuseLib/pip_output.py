"""Read what ``pip install`` prints: download progress, the dry-run report, and why it failed.

pip writes one line per step on stdout (``Collecting``, ``Downloading NAME (SIZE)``, ``Using cached``,
``Installing collected packages: ...``, ``Successfully installed ...``; with ``--progress-bar raw``,
pip >= 24.1, also ``Progress DONE of TOTAL`` bytes for each download) and its errors on stderr
(``ERROR: ...``). The texts these parsers expect were captured from real pip runs; see
``Testing/mrml/pip_captures``.

Written for Python 3.9 as well: an old Slicer imports the installer to say which Slicer it needs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any

from MedFuseLib.package_versions import normalize_name

__all__ = [
    "PipProgress",
    "PlannedInstall",
    "explain_pip_failure",
    "planned_installs",
    "python_floor_message",
]

#: The oldest Python torch 2.13 supports; Slicer 5.10 is the first Slicer that ships it (3.12).
MINIMUM_PYTHON = (3, 10)
MINIMUM_SLICER = "5.10"

_COLLECTING = re.compile(r"^Collecting (\S+)")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)(?: \(([^)]+)\))?")
_CACHED = re.compile(r"^\s*Using cached (\S+)")
_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)")
_INSTALLING = re.compile(r"^Installing collected packages: (.*)")
_SUCCESS = re.compile(r"^Successfully installed ")
_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_CONSTRAINT = re.compile(r"\(constraint\) ([A-Za-z0-9._-]+)==(\S+)")
_DEPENDS = re.compile(r"^\s*(\S+ \S+) depends on (.+)$")
_NETWORK = re.compile(
    r"NewConnectionError|Temporary failure in name resolution|Max retries exceeded|ProxyError|"
    r"SSLError|Could not fetch URL|Network is unreachable|timed out",
    re.IGNORECASE,
)


def python_floor_message(version_info: Sequence[int]) -> str | None:
    """The sentence an old Slicer shows, or None when its Python is new enough.

    Args:
        version_info: ``sys.version_info`` of Slicer's Python (major, minor, micro).
    """
    if tuple(version_info[:2]) >= MINIMUM_PYTHON:
        return None
    have = ".".join(str(part) for part in version_info[:3])
    need = ".".join(str(part) for part in MINIMUM_PYTHON)
    return (
        f"SlicerMedFuse needs Python {need} or later (torch 2.13 supports no older Python); this Slicer has "
        f"Python {have}: install 3D Slicer {MINIMUM_SLICER} or later."
    )


@dataclasses.dataclass
class PipProgress:
    """Progress of one ``pip install`` from its output lines.

    Args:
        total: how many distributions the dry-run said pip will install (at least 1).
    """

    total: int
    fetched: int = 0
    current: str = ""
    current_fraction: float = 0.0
    installing: list[str] = dataclasses.field(default_factory=list)
    finished: bool = False

    def feed(self, line: str) -> None:
        """Take one line of pip's stdout."""
        text = line.rstrip()
        if _COLLECTING.match(text):
            self.fetched = min(self.fetched + 1, max(self.total, 1))
            self.current, self.current_fraction = _COLLECTING.match(text).group(1), 0.0
        elif _CACHED.match(text):
            self.current, self.current_fraction = _CACHED.match(text).group(1), 1.0
        elif _DOWNLOADING.match(text):
            name, size = _DOWNLOADING.match(text).groups()
            self.current = f"{name} ({size})" if size else name
            self.current_fraction = 0.0
        elif _PROGRESS.match(text):
            done, size = (int(value) for value in _PROGRESS.match(text).groups())
            self.current_fraction = done / size if size else 0.0
        elif _INSTALLING.match(text):
            self.installing = [name.strip() for name in _INSTALLING.match(text).group(1).split(",") if name.strip()]
        elif _SUCCESS.match(text):
            self.finished = True

    @property
    def fraction(self) -> float:
        """0 to 1: downloads fill 0 to 0.85 (one share per distribution), installing 0.9, done 1."""
        if self.finished:
            return 1.0
        if self.installing:
            return 0.9
        started = max(self.fetched - 1, 0) + min(max(self.current_fraction, 0.0), 1.0)
        return 0.85 * min(started / max(self.total, 1), 1.0)

    @property
    def stage(self) -> str:
        """What pip does now, for the panel's status line."""
        if self.finished:
            return "Installed"
        if self.installing:
            return f"Installing {len(self.installing)} packages (keep Slicer open)"
        if not self.fetched:
            return "Starting pip"
        return f"Downloading package {self.fetched} of {max(self.total, self.fetched)}"


@dataclasses.dataclass(frozen=True)
class PlannedInstall:
    """One distribution a dry-run says pip would install (``requested``: named on the command line)."""

    name: str
    version: str
    requested: bool


def planned_installs(report: dict[str, Any]) -> list[PlannedInstall]:
    """The distributions in a ``pip install --dry-run --report`` JSON report (format version 1).

    Raises:
        ValueError: the report is not a pip installation report.
    """
    if not isinstance(report, dict) or not isinstance(report.get("install"), list):
        raise ValueError("not a pip installation report (no 'install' list)")
    planned = []
    for item in report["install"]:
        metadata = item.get("metadata", {})
        planned.append(PlannedInstall(str(metadata["name"]), str(metadata["version"]), bool(item.get("requested"))))
    return planned


def explain_pip_failure(
    lines: Iterable[str],
    python_version: Sequence[int],
    installed: dict[str, str] | None = None,
) -> str:
    """One sentence that says why pip failed and what the user does about it.

    Args:
        lines: pip's stdout and stderr lines.
        python_version: ``sys.version_info`` of the Python pip installs into.
        installed: normalized distribution name -> version of the packages the constraints pin.
    """
    text = [line.rstrip() for line in lines]
    floor = python_floor_message(python_version)
    no_match = next((_NO_MATCH.search(line) for line in text if _NO_MATCH.search(line)), None)
    if no_match is not None and floor is not None:
        return floor
    if any(_NETWORK.search(line) for line in text):
        return (
            "A package index (pypi.org, or download.pytorch.org for torch) could not be reached: check the internet connection or the proxy "
            "settings, then press Apply again."
        )
    if no_match is not None:
        python = ".".join(str(part) for part in python_version[:2])
        return (
            f"No build of {no_match.group(1)} for Python {python} on this computer was found on the package "
            "index: check the internet connection, then press Apply again; if it persists, report it with "
            "the Python console's log."
        )
    conflict = _constraint_conflict(text, installed or {})
    if conflict is not None:
        return conflict
    errors = [line.removeprefix("ERROR: ") for line in text if line.startswith("ERROR: ")]
    if errors:
        return f"pip could not install the packages: {errors[0]} (details in the Python console)."
    return "pip stopped without saying why; see the Python console, then press Apply again."


def _constraint_conflict(lines: list[str], installed: dict[str, str]) -> str | None:
    """The sentence for a conflict with a package pinned to Slicer's own version, if that is the cause."""
    pinned = next((_CONSTRAINT.search(line) for line in lines if _CONSTRAINT.search(line)), None)
    if pinned is None:
        return None
    name, version = pinned.groups()
    wanted = ""
    for line in lines:
        depends = _DEPENDS.match(line)
        if depends and normalize_name(name) in normalize_name(depends.group(2)):
            wanted = f"{depends.group(1)} needs {depends.group(2)}, but "
            break
    have = installed.get(normalize_name(name), version)
    sentence = (
        f"{wanted}this Slicer has {name} {have}, which SlicerMedFuse never replaces (Slicer needs its own): "
        f"install 3D Slicer {MINIMUM_SLICER} or later."
    )
    return sentence if wanted else "T" + sentence[1:]  # a package name keeps its case

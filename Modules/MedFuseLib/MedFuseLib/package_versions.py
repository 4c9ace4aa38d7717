"""What is installed in this Python: distribution versions that count only when their package imports.

A fresh 3D Slicer has neither distribution metadata nor importable packages for torch, monai,
jsonschema and safetensors; it has both for numpy, SimpleITK and pillow. A distribution counts as
installed only when its top-level package can be found by the import system, so a package that is
present on disk but cannot be imported (a broken or half-removed install, or one refused by an import
hook such as the fresh-Slicer test's) counts as missing and is installed again.

Written for Python 3.9 as well (no ``match``, no ``zip(strict=)``): an old Slicer imports this to say
which Slicer it needs.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import re

__all__ = [
    "forget_installed",
    "import_names",
    "installed_version",
    "marker_applies",
    "normalize_name",
    "satisfies",
    "split_requirement",
]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$")


def normalize_name(name: str) -> str:
    """The PEP 503 form of a distribution name (``SimpleITK`` -> ``simpleitk``, ``rpds_py`` -> ``rpds-py``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_requirement(requirement: str) -> tuple[str, str, str]:
    """Split a requirement string.

    Args:
        requirement: e.g. ``"torch==2.13.0"`` or ``"pillow>=9; python_version >= '3.10'"``.

    Returns:
        ``(name, specifier, marker)``: ``("torch", "==2.13.0", "")``.

    Raises:
        ValueError: the text is not a requirement.
    """
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


def satisfies(version: str, specifier: str) -> bool:
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
        ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b, "~=": a >= b}[operator]
        if not ok:
            return False
    return True


def marker_applies(marker: str) -> bool:
    """Whether an environment marker holds here (an ``extra`` marker never does)."""
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:
        return "extra" not in marker  # without packaging: skip only extras
    return Marker(marker).evaluate({"extra": ""})


@functools.lru_cache(maxsize=1)
def _provided_modules() -> dict[str, tuple[str, ...]]:
    """Top-level module -> normalized names of the distributions that provide it (scanning takes ~0.1 s)."""
    try:
        provided = importlib.metadata.packages_distributions()
    except Exception:  # a distribution with broken metadata must not stop the check
        return {}
    return {module: tuple(normalize_name(dist) for dist in dists) for module, dists in provided.items()}


def forget_installed() -> None:
    """Drop what was read about installed packages (call after installing)."""
    _provided_modules.cache_clear()
    importlib.invalidate_caches()


def import_names(distribution: str) -> list[str]:
    """The top-level packages a distribution provides (``pillow`` -> ``["PIL"]``).

    Read from the distribution's metadata when it is installed, else guessed from its name.
    """
    wanted = normalize_name(distribution)
    names = sorted(module for module, dists in _provided_modules().items() if wanted in dists)
    names = [name for name in names if name.isidentifier() and not name.startswith("_")]
    return names or [distribution.replace("-", "_")]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # refused by an import hook, or a broken package
        return False


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution whose package imports, else None.

    Args:
        distribution: pip name, e.g. ``"torch"`` or ``"SimpleITK"``.

    Returns:
        The metadata version; for an importable package without metadata (built into the
        application), its ``__version__``; None when it is not installed or cannot be imported.
    """
    modules = import_names(distribution)
    # The package named like the distribution is the one that matters (torch, not functorch or torchgen).
    main = [module for module in modules if normalize_name(module) == normalize_name(distribution)]
    if not all(_importable(module) for module in main or modules):
        return None
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    for module in modules:
        try:
            version = getattr(importlib.import_module(module), "__version__", None)
        except Exception:  # an import that fails counts as not installed
            version = None
        if isinstance(version, str):
            return version
    return None

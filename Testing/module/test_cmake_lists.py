"""Every Slicer module's CMakeLists.txt lists exactly the files the extension build must package.

Slicer's ``slicerMacroBuildScriptedModule`` copies only the SCRIPTS and RESOURCES it is given, so a
Python file or icon missing from the list works from the source tree and breaks in the packaged
extension. These checks read the CMake files as text (no CMake needed) and cover every module
folder under ``Modules/``, including the ones added later.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "Modules"
TOP_LEVEL = REPO_ROOT / "CMakeLists.txt"

MODULE_DIRS = sorted(path.parent for path in MODULES.glob("*/CMakeLists.txt"))
#: File kinds the build packages; a token ending in one of these is read as a listed file.
LISTED_SUFFIXES = ("py", "ui", "png", "svg", "json", "txt", "csv", "qss", "ctbl")
RESOURCE_SUFFIXES = (".ui", ".png")
IGNORED_PARTS = {"__pycache__", "Testing"}


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _variables(text: str, inherited: dict[str, str] | None = None) -> dict[str, str]:
    """``set(NAME value)`` with a single value, on top of the variables a parent scope passes down."""
    variables = dict(inherited or {})
    for name, value in re.findall(r"\bset\(\s*(\w+)\s+([^\s()]+)\s*\)", text, flags=re.IGNORECASE):
        variables[name] = _expand(value, variables)
    return variables


def _expand(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda match: variables.get(match.group(1), match.group(0)), text)


def _listed_files(cmake_file: Path, variables: dict[str, str]) -> set[str]:
    """Paths (relative to the CMake file's folder, POSIX form) that the file names."""
    text = _expand(_without_comments(cmake_file.read_text(encoding="utf-8")), variables)
    pattern = r"[\w./${}-]+\.(?:" + "|".join(LISTED_SUFFIXES) + r")\b"
    listed = set()
    for token in re.findall(pattern, text):
        if Path(token).name == "CMakeLists.txt":
            continue
        listed.add(token)
    return listed


def _module_files(module_dir: Path, suffixes: tuple[str, ...], under: str = "") -> set[str]:
    root = module_dir / under if under else module_dir
    found = set()
    for path in root.rglob("*"):
        relative = path.relative_to(module_dir)
        if path.is_file() and path.suffix in suffixes and not IGNORED_PARTS & set(relative.parts):
            found.add(relative.as_posix())
    return found


def _module_id(module_dir: Path) -> str:
    return module_dir.name


def test_there_are_modules_to_check():
    assert MODULE_DIRS, f"no Modules/*/CMakeLists.txt found under {MODULES}"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_module_id)
def test_every_python_file_is_listed(module_dir: Path):
    cmake_file = module_dir / "CMakeLists.txt"
    listed = _listed_files(cmake_file, _variables(cmake_file.read_text(encoding="utf-8")))
    unlisted = sorted(_module_files(module_dir, (".py",)) - listed)
    assert not unlisted, (
        f"{cmake_file.relative_to(REPO_ROOT)} does not list {unlisted}; Slicer's build would not package them"
    )


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_module_id)
def test_every_resource_is_listed(module_dir: Path):
    cmake_file = module_dir / "CMakeLists.txt"
    listed = _listed_files(cmake_file, _variables(cmake_file.read_text(encoding="utf-8")))
    unlisted = sorted(_module_files(module_dir, RESOURCE_SUFFIXES, under="Resources") - listed)
    assert not unlisted, f"{cmake_file.relative_to(REPO_ROOT)} does not list the resources {unlisted}"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_module_id)
def test_every_listed_file_exists(module_dir: Path):
    missing = []
    module_variables = _variables((module_dir / "CMakeLists.txt").read_text(encoding="utf-8"))
    for cmake_file in sorted(module_dir.rglob("CMakeLists.txt")):
        variables = dict(module_variables, CMAKE_CURRENT_SOURCE_DIR=cmake_file.parent.as_posix())
        variables = _variables(cmake_file.read_text(encoding="utf-8"), variables)
        for listed in _listed_files(cmake_file, variables):
            if "${" in listed:
                continue  # a variable this check cannot resolve (set by Slicer's own CMake)
            if not (cmake_file.parent / listed).resolve().is_file():
                missing.append(f"{cmake_file.relative_to(REPO_ROOT)}: {listed}")
    assert not missing, f"CMake lists files that do not exist: {missing}"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_module_id)
def test_every_subdirectory_has_a_cmake_file(module_dir: Path):
    missing = []
    for cmake_file in sorted(module_dir.rglob("CMakeLists.txt")):
        text = _without_comments(cmake_file.read_text(encoding="utf-8"))
        for name in re.findall(r"\badd_subdirectory\(\s*([^\s()]+)", text, flags=re.IGNORECASE):
            if not (cmake_file.parent / name / "CMakeLists.txt").is_file():
                missing.append(f"{cmake_file.relative_to(REPO_ROOT)}: add_subdirectory({name})")
    assert not missing, f"add_subdirectory points at folders without a CMakeLists.txt: {missing}"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=_module_id)
def test_top_level_build_adds_the_module(module_dir: Path):
    if not TOP_LEVEL.is_file():
        pytest.skip("the top-level CMakeLists.txt does not exist yet")
    text = _without_comments(TOP_LEVEL.read_text(encoding="utf-8"))
    added = {
        Path(name).as_posix() for name in re.findall(r"\badd_subdirectory\(\s*([^\s()]+)", text, flags=re.IGNORECASE)
    }
    expected = module_dir.relative_to(REPO_ROOT).as_posix()
    assert expected in added, f"the top-level CMakeLists.txt has no add_subdirectory({expected})"

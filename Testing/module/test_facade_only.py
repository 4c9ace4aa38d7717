"""The Slicer side imports from the backend only its torch-free facade, ``SlicerMedFuse.facade``.

Read with ``ast`` (nothing is imported): every ``import`` in ``Modules/**/*.py``, module level or
inside a function, that names ``SlicerMedFuse`` must be ``from SlicerMedFuse import facade`` or
``from SlicerMedFuse.facade import ...``. Deep paths pull in modules that need torch, monai or
jsonschema, which a fresh Slicer does not have before the first-use install.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODULES = Path(__file__).resolve().parents[2] / "Modules"
SOURCES = sorted(path for path in MODULES.rglob("*.py") if "Testing" not in path.parts)
ALLOWED_MODULE = "SlicerMedFuse.facade"


def _backend_imports(path: Path) -> list[str]:
    """``line: statement`` of every import of the backend that is not through the facade."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.split(".")[0] == "SlicerMedFuse"]
            found += [f"{node.lineno}: import {name}" for name in names if name != ALLOWED_MODULE]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "SlicerMedFuse":
            through_facade = node.module == ALLOWED_MODULE or (
                node.module == "SlicerMedFuse" and [alias.name for alias in node.names] == ["facade"]
            )
            if not through_facade:
                found.append(f"{node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
    return found


def test_there_are_sources_to_check():
    assert len(SOURCES) > 20


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(MODULES)))
def test_imports_only_the_facade(path: Path):
    deep = _backend_imports(path)
    assert not deep, f"{path.relative_to(MODULES)} imports the backend past its facade: {deep}"

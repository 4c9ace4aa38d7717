"""The backend's import graph points down only (DESIGN: "Imports point down only"), and Modules use the facade.

Every ``import`` and ``from ... import`` of every backend module counts, at module level and inside
functions alike (a function-level import is still a dependency, only a later one). Parts are the
top-level subpackages and modules of ``SlicerMedFuse``; :data:`TIERS` ranks them top to bottom.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "SlicerMedFuse"
PACKAGE_NAME = "SlicerMedFuse"

#: Top to bottom. A part may import parts of lower tiers, never of higher ones.
TIERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli", "demo", "batch", "serve"),  # entry points
    ("api",),  # read, check, run, commit atomically, report
    ("tasks",),  # one module per task: how it runs
    ("facade", "terminology"),  # what the Slicer side imports; the .term.json generated from the specs
    ("serve_client",),  # the standard-library client of `medfuse serve`, exported by the facade
    ("specs",),  # every task's declaration, torch-free
    ("hemorrhage", "breast", "registration", "superres"),  # method families
    ("training",),
    ("models",),
    ("nets",),
    ("io", "geometry", "progress", "device", "memory", "preview", "sample_data", "lazy"),
    ("contract",),
    ("errors",),
)
RANK = {part: rank for rank, parts in enumerate(TIERS) for part in parts}

#: Edges between parts of one tier, each with the reason it is allowed.
SIDEWAYS: dict[tuple[str, str], str] = {
    ("cli", "demo"): "'medfuse demo' is the demo's command line",
    ("cli", "batch"): "'medfuse batch' is the batch runner's command line",
    ("cli", "serve"): "'medfuse serve' is the server's command line",
    ("preview", "io"): "a preview reads the image it draws",
    ("preview", "geometry"): "a preview resamples onto the display grid",
    ("sample_data", "io"): "a sample is written as an image file",
}
#: Method families: they receive what they need (a spec, labels) instead of importing these.
DOMAIN = ("hemorrhage", "breast", "registration", "superres")
NEVER_FROM_DOMAIN = ("tasks", "cli", "api", "facade", "specs", "demo")


@dataclasses.dataclass(frozen=True)
class Edge:
    """One import of part ``target`` by module ``module`` (part ``source``) at ``line``."""

    source: str
    target: str
    module: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported} ({self.source} -> {self.target})"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_names(node: ast.AST, package: str) -> list[str]:
    """Absolute module names an import node names (``from X import a`` also yields ``X.a``: it may be a module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def _part(module: str) -> str | None:
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and bits[0] == PACKAGE_NAME else None


def _parts_of_package() -> set[str]:
    return {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir() if _is_part(path)}


def _is_part(path: Path) -> bool:
    if path.is_dir():
        return (path / "__init__.py").is_file()
    return path.suffix == ".py" and path.name != "__init__.py"


def backend_edges() -> Iterator[Edge]:
    """Every import of one part by another, module- and function-level."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        source = _part(module)
        if source is None:
            continue
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = _imported_names(node, package)
            if isinstance(node, ast.Import):
                candidates = names
            elif names and names[0] == PACKAGE_NAME:  # `from SlicerMedFuse import facade`
                candidates = names[1:]
            else:  # `from SlicerMedFuse.x import y`: part x, whether y is a module or a name
                candidates = names[:1]
            targets = {_part(name) for name in candidates}
            for target in sorted(t for t in targets if t is not None and t != source):
                yield Edge(source, target, module, names[0], node.lineno)


EDGES = list(backend_edges())


def test_every_part_has_a_tier():
    unranked = sorted(_parts_of_package() - set(RANK))
    assert not unranked, f"place these parts of {PACKAGE_NAME} in TIERS: {unranked}"
    assert len(RANK) == sum(len(parts) for parts in TIERS), "a part is listed in two tiers"


def test_imports_point_down_only():
    upward = [str(e) for e in EDGES if RANK[e.target] < RANK[e.source]]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_sideways_imports_are_the_listed_ones():
    sideways = {(e.source, e.target) for e in EDGES if RANK[e.target] == RANK[e.source]}
    unlisted = [str(e) for e in EDGES if (e.source, e.target) in sideways - set(SIDEWAYS)]
    assert not unlisted, "imports within one tier that SIDEWAYS does not list:\n" + "\n".join(unlisted)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def test_no_cycles_between_parts():
    graph: dict[str, set[str]] = {}
    for edge in EDGES:
        graph.setdefault(edge.source, set()).add(edge.target)
    in_cycles = sorted(part for part in graph if part in _reachable(graph, part))
    assert not in_cycles, f"these parts import themselves through others: {in_cycles}"


@pytest.mark.parametrize("family", DOMAIN)
def test_method_families_never_import_the_layers_above_them(family):
    wrong = [str(e) for e in EDGES if e.source == family and e.target in NEVER_FROM_DOMAIN]
    assert not wrong, f"{family} must receive what it needs instead:\n" + "\n".join(wrong)


@pytest.mark.parametrize("bottom", ["contract", "errors"])
def test_contract_and_errors_sit_at_the_bottom(bottom):
    allowed = {"contract": {"errors"}, "errors": set()}[bottom]
    wrong = [str(e) for e in EDGES if e.source == bottom and e.target not in allowed]
    assert not wrong, "\n".join(wrong)


def test_the_table_is_not_stale():
    """Every listed sideways edge still exists (a table entry with no import behind it is removed)."""
    present = {(e.source, e.target) for e in EDGES}
    assert set(SIDEWAYS) <= present, f"SIDEWAYS lists edges nobody imports: {sorted(set(SIDEWAYS) - present)}"


def _slicer_side_imports() -> Iterator[tuple[str, int, str]]:
    for path in sorted((REPO / "Modules").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
                if node.module == PACKAGE_NAME:
                    names = [f"{PACKAGE_NAME}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name == PACKAGE_NAME or name.startswith(PACKAGE_NAME + "."):
                    yield str(path.relative_to(REPO)), node.lineno, name


def test_modules_import_only_the_facade():
    wrong = [f"{path}:{line} imports {name}" for path, line, name in _slicer_side_imports()]
    wrong = [item for item in wrong if not item.endswith(f" imports {PACKAGE_NAME}.facade")]
    assert not wrong, "the Slicer side imports the backend only through SlicerMedFuse.facade:\n" + "\n".join(wrong)

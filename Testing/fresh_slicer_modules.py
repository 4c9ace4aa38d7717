"""What a fresh 3D Slicer does with the MedFuse modules, run inside the child of :mod:`Testing.fresh_slicer`.

Slicer loads a scripted module by importing ``Modules/<Name>/<Name>.py`` (its folder on ``sys.path``),
creates ``<Name>(parent)`` to fill the module list, and later the module's Logic and its parameter
node. This module does the same on slicer-core's real MRML (the headless harness) with the stand-ins
of :mod:`Testing.slicer_app_stand_ins` for the Qt application layer, and reports every step as JSON,
so the test in the parent process can say which step failed and why::

    run_in_fresh_slicer("from Testing.fresh_slicer_modules import main; main()")

Every step is recorded, never raised: one broken module does not hide the others.
"""

from __future__ import annotations

import importlib
import json
import re
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["installer_missing_names", "lib_module_names", "main", "module_files", "report"]

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULES = REPO_ROOT / "Modules"


def module_files() -> list[Path]:
    """``Modules/<Name>/<Name>.py`` for every scripted module (what Slicer's module scanner loads)."""
    return [path for path in sorted(MODULES.glob("*/*.py")) if path.stem == path.parent.name]


def lib_module_names() -> list[str]:
    """Dotted names of every Python file in the modules' libraries (``MedFuseLib.runner``, ``MedFuseBreastLib.Roles``)."""
    names = []
    for package in sorted(MODULES.glob("*/*Lib")):
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _attempt(step: Callable[[], object]) -> dict:
    """``{"ok": True, "value": ...}`` or ``{"ok": False, "error": "Type: message", "where": last frames}``."""
    try:
        return {"ok": True, "value": step()}
    except Exception as error:  # a report, not a crash: the parent test names the failing step
        # The last frames inside the project (the import blocker's own frame is "<string>").
        frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != "<string>"][-3:]
        where = [f"{Path(frame.filename).name}:{frame.lineno} {frame.line}" for frame in frames]
        return {"ok": False, "error": f"{type(error).__name__}: {error}", "where": where}


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    get_id = getattr(value, "GetID", None)
    return f"node {get_id()}" if callable(get_id) else repr(value)


def _check_parameter_node(logic) -> dict:
    """The wrapper's values and what the real ``vtkMRMLScriptedModuleNode`` in the scene holds."""
    import slicer

    wrapper = logic.getParameterNode()
    node = getattr(wrapper, "parameterNode", None)
    if node is None or not node.IsA("vtkMRMLScriptedModuleNode"):
        raise TypeError(f"getParameterNode() returned {type(wrapper).__name__}, not a parameterNodeWrapper")
    if slicer.mrmlScene.GetNodeByID(node.GetID()) is not node:
        raise RuntimeError("the parameter node is not in slicer.mrmlScene")
    stored = set(node.GetParameterNames())
    values = {name: _json_value(wrapper.getValue(name)) for name in wrapper.allParameters}
    return {"class": type(wrapper).__name__, "values": values, "stored": sorted(stored)}


def _check_module(path: Path) -> dict:
    from Testing.slicer_app_stand_ins import ModuleParent

    name = path.stem
    result: dict = {"import": _attempt(lambda: importlib.import_module(name).__file__)}
    if not result["import"]["ok"]:
        return result
    module = importlib.import_module(name)
    parent = ModuleParent(path)

    def create_module() -> dict:
        getattr(module, name)(parent)
        return {"title": parent.title, "icon": parent.icon.path if parent.icon else None}

    result["module"] = _attempt(create_module)
    result["widget_class"] = hasattr(module, f"{name}Widget")
    logic_class = getattr(module, f"{name}Logic", None)
    if logic_class is None:
        result["logic"] = {"ok": False, "error": f"{path.name} defines or imports no {name}Logic"}
        return result
    result["logic"] = _attempt(lambda: type(logic_class()).__name__)
    if result["logic"]["ok"]:
        result["parameter_node"] = _attempt(lambda: _check_parameter_node(logic_class()))
    return result


def installer_missing_names(requirements: list[str]) -> list[str]:
    """Distribution names (lower case) of requirement strings such as ``torch==2.13.0``."""
    names = [re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement) for requirement in requirements]
    return sorted(match.group(1).lower() for match in names if match)


def _missing_requirements() -> list[str]:
    from MedFuseLib.installer import BackendInstaller

    return BackendInstaller.for_slicer().missing_requirements()


def report() -> dict:
    """Every check of a fresh Slicer's module load (call in the fresh child; see the module docstring)."""
    from Testing.mrml.headless_slicer import headless_slicer
    from Testing.slicer_app_stand_ins import slicer_app_stand_ins

    headless_slicer()
    with slicer_app_stand_ins():
        return {
            "modules": {path.stem: _check_module(path) for path in module_files()},
            "libs": {
                name: _attempt(lambda name=name: importlib.import_module(name).__name__) for name in lib_module_names()
            },
            "missing_requirements": _attempt(_missing_requirements),
        }


def main() -> None:
    """Print :func:`report` as one JSON line on stdout (what the parent test reads)."""
    print(json.dumps(report()))

"""The MedFuse modules in a fresh 3D Slicer: before the first-use install, without torch, monai, jsonschema, safetensors.

One child Python (:func:`Testing.fresh_slicer.run_in_fresh_slicer`) refuses those four packages, builds
slicer-core's real MRML scene with the module logics (the headless harness), stands in only for what
slicer-core lacks (``qt``, ``ctk``, Slicer's Python application layer: :mod:`Testing.slicer_app_stand_ins`)
and does what Slicer does with each module (:mod:`Testing.fresh_slicer_modules`): import the module
file, create ``<Name>(parent)``, create the Logic and its parameter node on the scene; it also imports
every library file and asks the installer what is missing. The tests below read that one report.
"""

from __future__ import annotations

import json

import pytest

from Testing.fresh_slicer import BLOCKED, run_in_fresh_slicer
from Testing.fresh_slicer_modules import installer_missing_names, lib_module_names, module_files
from Testing.mrml.conftest import import_slicer_core

import_slicer_core()  # skip (fail in CI) without slicer-core

MODULE_NAMES = [path.stem for path in module_files()]


@pytest.fixture(scope="module")
def fresh_report() -> dict:
    """The child's JSON report (see :func:`Testing.fresh_slicer_modules.report`)."""
    finished = run_in_fresh_slicer("from Testing.fresh_slicer_modules import main; main()", timeout=600)
    lines = finished.stdout.strip().splitlines()
    assert finished.returncode == 0 and lines, f"the fresh-Slicer child failed:\n{finished.stderr[-3000:]}"
    return json.loads(lines[-1])


def _step(report: dict, module: str, step: str) -> dict:
    result = report["modules"][module].get(step)
    assert result is not None, f"{module}: the step before {step!r} failed: {report['modules'][module]}"
    return result


def _failure(name: str, result: dict) -> str:
    return f"{name}: {result.get('error')}\n    " + "\n    ".join(result.get("where", []))


def test_the_four_modules_are_checked():
    assert {"MedFuseBreast", "MedFuseHemorrhage", "MedFuseRegistration", "MedFuseSuperResolution"} <= set(MODULE_NAMES)


def test_the_blocked_packages_are_what_slicer_does_not_ship():
    assert set(BLOCKED) == {"torch", "monai", "jsonschema", "safetensors"}


def test_the_child_cannot_import_the_blocked_packages():
    code = "import importlib\nfor name in {blocked!r}:\n    try:\n        importlib.import_module(name)\n    except ModuleNotFoundError:\n        print(name)"
    finished = run_in_fresh_slicer(code.format(blocked=BLOCKED), timeout=120)
    assert finished.stdout.split() == list(BLOCKED), finished.stderr


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_file_imports(fresh_report: dict, module: str):
    result = _step(fresh_report, module, "import")
    assert result["ok"], _failure(f"import {module}", result)


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_class_fills_its_module_list_entry(fresh_report: dict, module: str):
    result = _step(fresh_report, module, "module")
    assert result["ok"], _failure(f"{module}(parent)", result)
    entry = result["value"]
    assert entry["title"].startswith("MedFuse"), entry
    assert entry["icon"] and entry["icon"].endswith(f"Resources/Icons/{module}.png"), entry
    assert fresh_report["modules"][module]["widget_class"], f"{module}.py has no {module}Widget for Slicer to show"


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_logic_and_parameter_node_on_a_real_scene(fresh_report: dict, module: str):
    logic = _step(fresh_report, module, "logic")
    assert logic["ok"], _failure(f"{module}Logic()", logic)
    result = _step(fresh_report, module, "parameter_node")
    assert result["ok"], _failure(f"{module}Logic().getParameterNode()", result)
    parameters = result["value"]
    assert parameters["values"], f"{parameters['class']} declares no parameters"
    unstored = sorted(set(parameters["values"]) - set(parameters["stored"]))
    assert not unstored, f"{parameters['class']}: {unstored} are not kept in the vtkMRMLScriptedModuleNode"


def test_every_library_file_imports(fresh_report: dict):
    assert set(fresh_report["libs"]) == set(lib_module_names())
    failures = [_failure(name, result) for name, result in fresh_report["libs"].items() if not result["ok"]]
    assert not failures, "\n".join(failures)


def test_installer_reports_exactly_the_blocked_requirements(fresh_report: dict):
    result = fresh_report["missing_requirements"]
    assert result["ok"], _failure("BackendInstaller.for_slicer().missing_requirements()", result)
    assert installer_missing_names(result["value"]) == sorted(BLOCKED)

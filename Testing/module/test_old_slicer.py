"""Every MedFuse module file loads on Slicer 5.6/5.8 (Python 3.9) and says, in one sentence, what to install.

The declared floor is Slicer 5.10 (Python 3.12). A Slicer 5.6 or 5.8 still imports each module file
at startup, so the file must parse as Python 3.9 and import only Python-3.9-safe code up to its
version check (``MedFuseLib.slicer_version``); the panel, parameter pack and logic live in the
module's Lib and are imported only after the check. Here each module file is parsed with Python 3.9's
grammar, and loaded with ``sys.version_info`` reporting 3.9 against small stand-ins for Slicer's
Python application layer: its widget shows the sentence and no Lib module is imported.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
import typing
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "Modules"
MODULE_FILES = sorted(path for path in MODULES.glob("*/*.py") if path.stem == path.parent.name)
VERSION_FILE = MODULES / "MedFuseLib" / "MedFuseLib" / "slicer_version.py"


def test_the_four_modules_are_checked():
    names = {path.stem for path in MODULE_FILES}
    assert {"MedFuseBreast", "MedFuseHemorrhage", "MedFuseRegistration", "MedFuseSuperResolution"} <= names


@pytest.mark.parametrize("path", [*MODULE_FILES, VERSION_FILE], ids=lambda path: path.name)
def test_parses_as_python_3_9(path: Path):
    source = path.read_text(encoding="utf-8")
    ast.parse(source, filename=str(path), feature_version=(3, 9))
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    strict = [call.lineno for call in calls if any(keyword.arg == "strict" for keyword in call.keywords)]
    assert not strict, f"{path.name}:{strict} uses zip(strict=...), which Python 3.9 does not have"


class _Label:
    def __init__(self, text: str) -> None:
        self.text, self.wordWrap = text, False


class _Layout:
    def __init__(self) -> None:
        self.widgets: list = []

    def addWidget(self, widget) -> None:
        self.widgets.append(widget)

    def addStretch(self, stretch: int) -> None:
        pass


def _old_slicer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for what a Slicer 5.6 module file sees, and Python reporting version 3.9.10."""
    slicer = types.ModuleType("slicer")
    slicer.app = types.SimpleNamespace(applicationVersion="5.6.2")
    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModule:
        def __init__(self, parent) -> None:
            self.parent = parent

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None) -> None:
            self.parent, self.layout = parent, _Layout()

        def setup(self) -> None:
            pass

    scripted.ScriptedLoadableModule = ScriptedLoadableModule
    scripted.ScriptedLoadableModuleWidget = ScriptedLoadableModuleWidget
    slicer.i18n, slicer.ScriptedLoadableModule = i18n, scripted
    qt = types.ModuleType("qt")
    qt.QLabel = _Label
    for name, module in {
        "slicer": slicer,
        "slicer.i18n": i18n,
        "slicer.ScriptedLoadableModule": scripted,
        "qt": qt,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys, "version_info", (3, 9, 10, "final", 0))
    for name in [name for name in sys.modules if name.split(".")[0].endswith("Lib")]:
        monkeypatch.delitem(sys.modules, name)
    for folder in sorted(path for path in MODULES.iterdir() if path.is_dir()):
        monkeypatch.syspath_prepend(str(folder))


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda path: path.stem)
def test_on_slicer_5_6_the_module_loads_and_shows_one_sentence(path: Path, monkeypatch: pytest.MonkeyPatch):
    _old_slicer(monkeypatch)
    spec = importlib.util.spec_from_file_location(f"old_slicer_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    spec.loader.exec_module(module)

    allowed = {"MedFuseLib", "MedFuseLib.slicer_version"}  # the Python-3.9-safe version check itself
    loaded = sorted(name for name in sys.modules if name.split(".")[0].endswith("Lib") and name not in allowed)
    assert loaded == [], f"{path.name} imported {loaded} before the version check"
    backend = sorted(name for name in set(sys.modules) - before if name.startswith("SlicerMedFuse"))
    assert backend == [], f"{path.name} imported the backend ({backend}) before the version check"
    getattr(module, path.stem)(types.SimpleNamespace())  # the module's metadata class
    widget = getattr(module, f"{path.stem}Widget")()
    widget.setup()
    [label] = widget.layout.widgets
    assert label.text == (
        "MedFuse needs Slicer 5.10 or later; this is Slicer 5.6.2 with Python 3.9: "
        "install a current Slicer from download.slicer.org."
    )


def test_on_a_current_python_there_is_no_sentence():
    spec = importlib.util.spec_from_file_location("current_slicer_version", VERSION_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("slicer.ScriptedLoadableModule", types.SimpleNamespace(ScriptedLoadableModuleWidget=object))
    try:
        spec.loader.exec_module(module)
    finally:
        if isinstance(sys.modules.get("slicer.ScriptedLoadableModule"), types.SimpleNamespace):
            del sys.modules["slicer.ScriptedLoadableModule"]
    assert module.slicerTooOldMessage() is None


# --------------------------------------------------------------------------- layout only when asked


def test_super_resolution_changes_the_layout_only_when_asked():
    """The panel's only ``setLayout`` is in the compare step; after a run it is reached only if compareAfterRun is on."""
    path = MODULES / "MedFuseSuperResolution" / "MedFuseSuperResolutionLib" / "Widget.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    widget = next(node for node in tree.body if isinstance(node, ast.ClassDef))
    methods = {node.name: node for node in widget.body if isinstance(node, ast.FunctionDef)}
    layout_setters = {
        name
        for name, method in methods.items()
        for node in ast.walk(method)
        if isinstance(node, ast.Attribute) and node.attr == "setLayout"
    }
    assert layout_setters == {"_showSideBySide"}
    callers = {
        name
        for name, method in methods.items()
        for node in ast.walk(method)
        if isinstance(node, ast.Attribute) and node.attr == "_showSideBySide"
    }
    assert callers == {"_finishJob", "onCompareButton"}  # after a run, or on the user's button
    guarded = [
        node
        for node in ast.walk(methods["_finishJob"])
        if isinstance(node, ast.If)
        and "compareAfterRun" in ast.unparse(node.test)
        and any(isinstance(n, ast.Attribute) and n.attr == "_showSideBySide" for n in ast.walk(node))
    ]
    assert guarded, "_finishJob switches the layout without the compareAfterRun option"


# --------------------------------------------------------------------------- a current Slicer


class _StandInModule(types.ModuleType):
    """A module whose every missing attribute is a new class of that name (``slicer.vtkMRMLScalarVolumeNode``)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        value = type(name, (), {"__init__": lambda self, *args, **kwargs: None})
        setattr(self, name, value)
        return value


def _current_slicer(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Stand-ins for the parts of Slicer 5.10's Python application layer a module file imports."""
    slicer = _StandInModule("slicer")
    slicer.app = types.SimpleNamespace(applicationVersion="5.10.0")
    names = ("slicer.i18n", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.util")
    modules = {name: _StandInModule(name) for name in names}
    modules["slicer.i18n"].tr = lambda text: text
    wrapper = modules["slicer.parameterNodeWrapper"]
    wrapped: list[type] = []
    wrapper.parameterNodeWrapper = lambda cls: wrapped.append(cls) or cls
    wrapper.Choice = lambda choices: ("Choice", tuple(choices))
    wrapper.WithinRange = lambda low, high: ("WithinRange", low, high)
    for name, module in modules.items():
        setattr(slicer, name.split(".", 1)[1], module)
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    for name in ("qt", "ctk"):  # vtk is the real one (slicer-core's)
        monkeypatch.setitem(sys.modules, name, _StandInModule(name))
    for name in [name for name in sys.modules if name.split(".")[0].endswith("Lib")]:
        monkeypatch.delitem(sys.modules, name)
    for folder in sorted(path for path in MODULES.iterdir() if path.is_dir()):
        monkeypatch.syspath_prepend(str(folder))
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    return types.SimpleNamespace(wrapped=wrapped)


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda path: path.stem)
def test_on_a_current_slicer_the_module_file_gives_the_panel_logic_and_test(
    path: Path, monkeypatch: pytest.MonkeyPatch
):
    app = _current_slicer(monkeypatch)
    spec = importlib.util.spec_from_file_location(f"current_slicer_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    for suffix, lib_file in (("Widget", "Widget"), ("Logic", "ModuleLogic"), ("Test", "SelfTest")):
        found = getattr(module, f"{path.stem}{suffix}")
        assert found.__module__ == f"{path.stem}Lib.{lib_file}", f"{path.stem}{suffix} comes from {found.__module__}"
    [pack] = app.wrapped
    assert pack.__name__ == f"{path.stem}ParameterNode"
    task_logic = next(
        value
        for value in vars(sys.modules[f"{path.stem}Lib.Logic"]).values()
        if isinstance(value, type) and getattr(value, "TASK_NAME", "") and value.__module__ == f"{path.stem}Lib.Logic"
    )
    assert getattr(module, f"{path.stem}Logic").PARAMETER_PACK is pack
    from MedFuseLib.task_logic import camelName

    declared = {camelName(parameter.name): parameter for parameter in task_logic.spec().parameters}
    hints = typing.get_type_hints(pack, include_extras=True)  # what Slicer's parameterNodeWrapper reads
    held = set(hints) & set(declared)
    assert held, f"{pack.__name__} holds none of its task's parameters"
    for base in pack.__mro__[1:]:
        if base.__module__ == "MedFuseLib.parameter_pack":  # fields derived from the declaration
            for name in base.__annotations__:
                assert getattr(pack, name) == declared[name].default, f"{pack.__name__}.{name} default"

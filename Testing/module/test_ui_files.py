"""Every module panel's ``.ui`` file loads, and agrees with the module's Python.

The panels only run inside the desktop Slicer application, which is not available to the test
machines. What can be checked without it, for every ``Modules/*/Resources/UI/*.ui`` (so modules
added later are covered too):

* the file is valid Qt Designer XML, every custom widget it uses is declared, every signal
  connection names existing widgets;
* PySide6's ``QUiLoader`` builds it (offscreen), with small stand-ins for the CTK and qMRML classes;
* every ``self.ui.<name>`` the module's Python uses exists in the ``.ui``;
* every ``SlicerParameterName`` is a field of the module's ``@parameterNodeWrapper`` class (read with
  ``ast``, no Slicer import), bound to a widget class that Slicer's parameter-node GUI connectors
  accept for the field's type (otherwise ``connectGui`` fails at run time inside Slicer).
"""

from __future__ import annotations

import ast
import dataclasses
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "Modules"
UI_FILES = sorted(MODULES.glob("*/Resources/UI/*.ui"))
PARAMETER_PROPERTY = "SlicerParameterName"

#: Widget classes Slicer's parameterNodeWrapper GUI connectors bind to each field type
#: (slicer/parameterNodeWrapper/guiConnectors.py; the match is on the exact class).
CONNECTABLE = {
    "bool": {"QCheckBox", "QPushButton"},
    "int": {"QSpinBox", "QSlider"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget"},
    "str": {"QLineEdit", "QTextEdit"},
    "Path": {"ctkPathLineEdit", "ctkDirectoryButton"},
    "node": {"qMRMLNodeComboBox", "qMRMLSubjectHierarchyTreeView"},
}
#: A QComboBox binds to these types when the field is annotated with Choice([...]).
CHOICE_TYPES = {"int", "float", "str", "bool"}


def _ui_id(path: Path) -> str:
    return f"{path.parents[2].name}/{path.name}"


def _module_dir(ui_file: Path) -> Path:
    return ui_file.parents[2]


def _module_sources(module_dir: Path) -> list[Path]:
    """The module's own Python files (module file and its Lib folder), tests excluded."""
    return sorted(
        path
        for path in module_dir.rglob("*.py")
        if not {"Testing", "__pycache__"} & set(path.relative_to(module_dir).parts)
    )


# --------------------------------------------------------------------------- reading the .ui XML


@dataclasses.dataclass(frozen=True)
class UiWidget:
    name: str
    cls: str
    parameter: str | None


def _widgets(root: ET.Element) -> list[UiWidget]:
    found = []
    for element in root.iter("widget"):
        parameter = None
        for prop in element.findall("property"):
            if prop.get("name") == PARAMETER_PROPERTY:
                parameter = prop.findtext("string")
        found.append(UiWidget(element.get("name", ""), element.get("class", ""), parameter))
    return found


def _custom_widgets(root: ET.Element) -> dict[str, str]:
    """Custom widget class -> the class it extends, from the <customwidgets> block."""
    return {item.findtext("class"): item.findtext("extends") or "QWidget" for item in root.iter("customwidget")}


# --------------------------------------------------------------------------- reading the module's Python


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    base: str  # "float", "str", "node", ...; "" when this check does not know the type
    has_choice: bool


def _annotation_base(node: ast.expr) -> str:
    if isinstance(node, ast.Subscript):
        head = _dotted(node.value)
        if head.endswith("Annotated"):
            first = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) else node.slice
            return _annotation_base(first)
        if head.endswith("Optional"):
            return _annotation_base(node.slice)
        return ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        for side in (node.left, node.right):
            if not (isinstance(side, ast.Constant) and side.value is None):
                return _annotation_base(side)
    name = _dotted(node).rsplit(".", 1)[-1]
    if name.startswith("vtkMRML"):
        return "node"
    return name if name in CONNECTABLE or name in CHOICE_TYPES else ""


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _has_choice(annotation: ast.expr) -> bool:
    return any(isinstance(call, ast.Call) and _dotted(call.func).endswith("Choice") for call in ast.walk(annotation))


def _parameter_fields(sources: list[Path]) -> dict[str, Field]:
    """Annotated fields of every class decorated with ``parameterNodeWrapper`` in the sources."""
    fields: dict[str, Field] = {}
    for source in sources:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                _TREES[id(base)] = tree
            decorators = [_dotted(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list]
            if not any(d.endswith("parameterNodeWrapper") for d in decorators):
                continue
            for base in node.bases:
                fields.update(_task_parameter_fields(base))
            for statement in node.body:
                if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                    name = statement.target.id
                    fields[name] = Field(
                        name, _annotation_base(statement.annotation), _has_choice(statement.annotation)
                    )
    return fields


#: The pack field type of each kind of task parameter (MedFuseLib.parameter_pack.FIELD_TYPES).
TASK_PARAMETER_BASES = {"float": "float", "int": "int", "bool": "bool", "choice": "str", "str": "str"}


def _task_parameter_fields(base: ast.expr) -> dict[str, Field]:
    """The fields a ``taskParameterFields("task", (names...))`` base gives a pack, from the task's declaration."""
    if not (isinstance(base, ast.Call) and _dotted(base.func).endswith("taskParameterFields")):
        return {}
    from SlicerMedFuse.facade import task_spec

    task, *rest = (
        ast.literal_eval(argument) if isinstance(argument, ast.Constant) else argument for argument in base.args
    )
    names = None
    if rest:  # a literal tuple, or a module-level constant naming one
        names = rest[0] if isinstance(rest[0], tuple) else _module_constant(base, rest[0])
    fields = {}
    for parameter in task_spec(task).parameters:
        head, *tail = parameter.name.split("_")
        name = head + "".join(part.capitalize() for part in tail)
        if names is None or name in names:
            fields[name] = Field(name, TASK_PARAMETER_BASES[parameter.kind], parameter.kind == "choice")
    return fields


def _module_constant(base: ast.expr, name_node: ast.expr) -> tuple:
    """The tuple a module-level ``NAME = (...)`` assigns, for a base that names it."""
    tree = _TREES[id(base)]
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and [ast.unparse(t) for t in statement.targets] == [
            ast.unparse(name_node)
        ]:
            return tuple(ast.literal_eval(statement.value))
    raise AssertionError(f"{ast.unparse(name_node)} is not a module-level tuple")


_TREES: dict[int, ast.Module] = {}


def _ui_names_used(sources: list[Path]) -> set[str]:
    """Every ``X`` in ``self.ui.X`` (or ``widget.ui.X``) in the sources."""
    names = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui":
                names.add(node.attr)
    return names


# --------------------------------------------------------------------------- the tests


def test_there_are_ui_files_to_check():
    assert UI_FILES, f"no Modules/*/Resources/UI/*.ui found under {MODULES}"


@pytest.mark.parametrize("ui_file", UI_FILES, ids=_ui_id)
def test_ui_xml_is_well_formed(ui_file: Path):
    root = ET.parse(ui_file).getroot()
    assert root.tag == "ui"
    top = root.find("widget")
    assert top is not None, "the .ui has no top-level widget"
    custom = _custom_widgets(root)
    undeclared = sorted({w.cls for w in _widgets(root) if not w.cls.startswith("Q") and w.cls not in custom})
    assert not undeclared, f"widget classes used but not declared in <customwidgets>: {undeclared}"
    names = [w.name for w in _widgets(root)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f"widget names used twice: {duplicates}"
    for connection in root.iter("connection"):
        for end in ("sender", "receiver"):
            assert connection.findtext(end) in names, f"connection {end} {connection.findtext(end)!r} is not a widget"


@pytest.mark.parametrize("ui_file", UI_FILES, ids=_ui_id)
def test_module_python_uses_only_widgets_the_ui_has(ui_file: Path):
    names = {w.name for w in _widgets(ET.parse(ui_file).getroot())}
    used = _ui_names_used(_module_sources(_module_dir(ui_file)))
    missing = sorted(used - names)
    assert not missing, f"the module's Python uses self.ui.{missing} but {ui_file.name} has no such widget"


@pytest.mark.parametrize("ui_file", UI_FILES, ids=_ui_id)
def test_parameter_names_are_fields_bound_to_connectable_widgets(ui_file: Path):
    fields = _parameter_fields(_module_sources(_module_dir(ui_file)))
    bound = [w for w in _widgets(ET.parse(ui_file).getroot()) if w.parameter]
    if not bound:
        pytest.skip(f"{ui_file.name} binds no widget to a parameter node")
    assert fields, f"{ui_file.name} uses {PARAMETER_PROPERTY} but the module has no @parameterNodeWrapper class"
    problems = []
    for widget in bound:
        field = fields.get(widget.parameter.split(".", 1)[0])
        if field is None:
            problems.append(f"{widget.name}: {widget.parameter!r} is not a parameter node field ({sorted(fields)})")
        elif widget.cls == "QComboBox":
            if field.base and (field.base not in CHOICE_TYPES or not field.has_choice):
                problems.append(
                    f"{widget.name}: a QComboBox needs a {sorted(CHOICE_TYPES)} field annotated Choice([...])"
                )
        elif field.base and widget.cls not in CONNECTABLE[field.base]:
            problems.append(
                f"{widget.name}: a {field.base} field binds to {sorted(CONNECTABLE[field.base])}, not {widget.cls}"
            )
    assert not problems, "; ".join(problems)


@pytest.mark.ui
@pytest.mark.parametrize("ui_file", UI_FILES, ids=_ui_id)
def test_ui_loads_with_qt(ui_file: Path, qt_application):
    from PySide6.QtCore import QFile, QIODevice, QObject
    from PySide6.QtUiTools import QUiLoader
    from PySide6.QtWidgets import QWidget

    root = ET.parse(ui_file).getroot()
    loader = QUiLoader()
    # Keep the stand-in classes referenced until loading is done: the loader does not own them, and a
    # collected class makes QUiLoader crash (seen with a QTableView-based stand-in).
    stand_ins = [_stand_in(cls, base) for cls, base in _custom_widgets(root).items()]
    for stand_in in stand_ins:
        loader.registerCustomWidget(stand_in)
    device = QFile(str(ui_file))
    assert device.open(QIODevice.OpenModeFlag.ReadOnly)
    try:
        widget = loader.load(device)
    finally:
        device.close()
    assert widget is not None, f"QUiLoader could not load {ui_file.name}: {loader.errorString()}"
    try:
        for expected in _widgets(root):
            child = widget if expected.name == widget.objectName() else widget.findChild(QObject, expected.name)
            assert child is not None, f"{expected.name} was not created"
            assert child.metaObject().className() == expected.cls, (
                f"{expected.name} is a {child.metaObject().className()}"
            )
            if expected.parameter:
                assert child.property(PARAMETER_PROPERTY) == expected.parameter
        assert isinstance(widget, QWidget)
    finally:
        widget.deleteLater()


def _stand_in(cls: str, base: str) -> type:
    """A trivial subclass named like the CTK/qMRML class, so QUiLoader creates and names it."""
    from PySide6 import QtWidgets

    return type(cls, (getattr(QtWidgets, base, QtWidgets.QWidget),), {})


@pytest.fixture(scope="module")
def qt_application():
    pytest.importorskip("PySide6.QtUiTools", reason="PySide6 is needed to load .ui files")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])

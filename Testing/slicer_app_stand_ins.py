"""Stand-ins for the parts of 3D Slicer that slicer-core (PyPI) does not ship (DESIGN rule 8).

slicer-core has Slicer's MRML, the module logics and most of ``slicer.util``, but not the Qt
application layer. A MedFuse module file imports ``qt``, ``ctk``, ``slicer.ScriptedLoadableModule``,
``slicer.parameterNodeWrapper`` and ``slicer.i18n`` and reads ``slicer.app``; these stand-ins supply
exactly those names, so the module files, their Logic classes and their parameter nodes run on a real
MRML scene (:mod:`Testing.mrml.headless_slicer`). Nothing here stands in for MRML or ``slicer.util``:
the real slicer-core functions run, in Slicer's own *testing mode* (``slicer.app.testingEnabled()``
is True, as under ``Slicer --testing``: message boxes are logged instead of shown).

What behaves like Slicer (written from Slicer's ``Base/Python/slicer`` behaviour, not copied):

* ``parameterNodeWrapper``: annotations are evaluated with ``typing.get_type_hints`` as Slicer does
  (so a name that is not defined at class creation fails here as it fails in Slicer); defaults come
  from the class attribute, a ``Default(...)`` annotation or the type's default (0, "", False, None);
  every value, default included, is validated on write (``Choice``, ``WithinRange``, ``Minimum``,
  ``Maximum``, ``NotNone``, the type itself) and stored in the real ``vtkMRMLScriptedModuleNode``:
  plain values as parameters (``SetParameter``), nodes as node references.
* ``ScriptedLoadableModule`` / ``ScriptedLoadableModuleLogic``: the module's parent fields, its icon
  from ``Resources/Icons``, ``slicer.selfTests``; the singleton parameter node per module.

What cannot run here (raises ``RuntimeError`` naming the class): every ``qt``/``ctk`` widget and
dialog, and ``connectGui``'s widget binding (it only records the GUI). Those have never run in tests.
``qt.QTimer`` can be made and started, but there is no event loop: it fires only when a test says so.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import pathlib
import sys
import tempfile
import types
import typing
import unittest
from collections.abc import Iterator

import slicer

__all__ = ["AppRecord", "ModuleParent", "slicer_app_stand_ins"]

# --------------------------------------------------------------------------- qt and ctk


class _NeedsSlicerApp:
    """A Qt/CTK class that exists only inside the Slicer application."""

    qualifiedName = "qt.QObject"

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(f"{self.qualifiedName} needs the Slicer application (slicer-core has no Qt widgets).")


def _qt_like_module(name: str, members: dict[str, object]) -> types.ModuleType:
    """A module whose unknown attributes are classes that refuse to be created."""
    module = types.ModuleType(name, f"Stand-in for Slicer's {name} (see Testing/slicer_app_stand_ins.py).")
    module.__dict__.update(members)

    def __getattr__(attribute: str) -> type:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        placeholder = type(attribute, (_NeedsSlicerApp,), {"qualifiedName": f"{name}.{attribute}"})
        setattr(module, attribute, placeholder)
        return placeholder

    module.__getattr__ = __getattr__
    return module


class _QIcon:
    """``qt.QIcon(path)``: keeps the path, so a test can see which icon a module found."""

    def __init__(self, path: str = "") -> None:
        self.path = path


class _QSettings:
    """``qt.QSettings``: an in-memory store shared by every instance (Slicer's settings file is not read)."""

    _values: typing.ClassVar[dict[str, object]] = {}

    def value(self, key: str, default: object = None) -> object:
        return self._values.get(key, default)

    def setValue(self, key: str, value: object) -> None:
        self._values[key] = value

    def contains(self, key: str) -> bool:
        return key in self._values


class _QTimer:
    """``qt.QTimer`` without an event loop: it keeps its slot and state, and fires only when told.

    Code that schedules work on a timer (a panel's job poller, a console run that finishes itself)
    can be built and started here; nothing runs the loop, as in a Slicer console that is blocked in
    a call. A test fires the timer with :meth:`fireTimeout` (not a Qt method).
    """

    def __init__(self, parent: object = None) -> None:
        self.interval, self.singleShot, self.active = 0, False, False
        self._slots: list[typing.Callable[[], None]] = []

    def setInterval(self, milliseconds: int) -> None:
        self.interval = int(milliseconds)

    def setSingleShot(self, singleShot: bool) -> None:
        self.singleShot = bool(singleShot)

    def connect(self, signal: str, slot: typing.Callable[[], None]) -> None:
        if signal != "timeout()":
            raise RuntimeError(f"qt.QTimer stand-in has no signal {signal!r}")
        self._slots.append(slot)

    def start(self, milliseconds: int | None = None) -> None:
        if milliseconds is not None:
            self.interval = int(milliseconds)
        self.active = True

    def stop(self) -> None:
        self.active = False

    def isActive(self) -> bool:
        return self.active

    def fireTimeout(self) -> None:
        """What one tick of the event loop would do for an active timer."""
        if not self.active:
            return
        if self.singleShot:
            self.active = False
        for slot in list(self._slots):
            slot()


class _QMessageBox(_NeedsSlicerApp):
    """Only the button and icon constants that ``slicer.util``'s message functions read in testing mode."""

    qualifiedName = "qt.QMessageBox"
    NoButton, Ok, Cancel, Yes, No = 0x0, 0x400, 0x400000, 0x4000, 0x10000
    NoIcon, Information, Warning, Critical, Question = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------- the application


class ModuleParent:
    """What Slicer passes to a scripted module's constructor (a ``qSlicerScriptedLoadableModule``).

    Args:
        path: the module file (``Modules/<Name>/<Name>.py``); the icon is looked up beside it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.title = ""
        self.categories: list[str] = []
        self.dependencies: list[str] = []
        self.contributors: list[str] = []
        self.helpText = ""
        self.acknowledgementText = ""
        self.icon: _QIcon | None = None
        self.hidden = False


class AppRecord:
    """``slicer.app`` as a ``--testing --no-main-window`` Slicer shows it, plus what the code asked of it.

    Attributes:
        connections: (signal, slot) pairs connected on the module manager.
        processEventsCalls: how often ``processEvents()`` ran.
    """

    applicationName = "Slicer"
    applicationVersion = "5.10.0"  # the floor MedFuse declares
    majorVersion, minorVersion = 5, 10

    def __init__(self, temporary_path: str) -> None:
        self.temporaryPath = temporary_path
        self.slicerUserSettingsFilePath = os.path.join(temporary_path, "Slicer.ini")
        self.connections: list[tuple[str, object]] = []
        self.processEventsCalls = 0
        manager = types.SimpleNamespace(
            connect=lambda signal, slot: self.connections.append((signal, slot)),
            disconnect=lambda signal, slot: self.connections.remove((signal, slot)),
        )
        self.moduleManager = lambda: manager

    def testingEnabled(self) -> bool:
        return True

    def processEvents(self) -> None:
        self.processEventsCalls += 1

    def layoutManager(self) -> None:
        """None, as in a Slicer without a main window."""
        return None

    def topLevelWidgets(self) -> list:
        return []

    def setOverrideCursor(self, cursor: object) -> None:
        pass

    def restoreOverrideCursor(self) -> None:
        pass


# --------------------------------------------------------------------------- parameterNodeWrapper


class Validator:
    """Base of the validators a parameter's ``Annotated[...]`` may carry; ``validate`` raises on a bad value."""

    def validate(self, value: object) -> None:
        raise NotImplementedError


class NotNone(Validator):
    def validate(self, value: object) -> None:
        if value is None:
            raise ValueError("Value must not be None")


class _IsInstance(Validator):
    def __init__(self, classes: type | tuple[type, ...]) -> None:
        self.classes = classes

    def validate(self, value: object) -> None:
        if value is not None and not isinstance(value, self.classes):
            raise TypeError(f"Value must be of type {self.classes}, is {type(value).__name__} {value!r}")


class WithinRange(Validator):
    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value: object) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within [{self.minimum}, {self.maximum}], is {value}")


class Minimum(Validator):
    def __init__(self, minimum: float) -> None:
        self.minimum = minimum

    def validate(self, value: object) -> None:
        if value < self.minimum:
            raise ValueError(f"Value must be at least {self.minimum}, is {value}")


class Maximum(Validator):
    def __init__(self, maximum: float) -> None:
        self.maximum = maximum

    def validate(self, value: object) -> None:
        if value > self.maximum:
            raise ValueError(f"Value must be at most {self.maximum}, is {value}")


class Choice(Validator):
    def __init__(self, choices: typing.Iterable[object]) -> None:
        self.choices = list(choices)

    def validate(self, value: object) -> None:
        if value not in self.choices:
            raise ValueError(f"Value is {value!r}, but must be one of {self.choices}")


class Default:
    """``Annotated[T, Default(value)]``: a default given as an annotation instead of ``= value``."""

    def __init__(self, value: object) -> None:
        self.value = value


class _Storage:
    """How one Python type is kept in a ``vtkMRMLScriptedModuleNode``."""

    def __init__(self, type_: object, node_classes: tuple[type, ...] = ()) -> None:
        self.type = type_
        self.node_classes = node_classes

    @property
    def default(self) -> object:
        if self.node_classes:
            return None
        if self.type is pathlib.Path:
            return pathlib.Path()
        if isinstance(self.type, type) and issubclass(self.type, enum.Enum):
            return next(iter(self.type))
        return {bool: False, int: 0, float: 0.0, str: ""}[self.type]

    def implied_validators(self) -> list[Validator]:
        if self.node_classes:
            return [_IsInstance(self.node_classes)]
        classes = (int, float) if self.type is float else self.type
        if self.type is int:  # bool is an int in Python, not in a parameter node
            return [NotNone(), _IsInstance(int), _NotBool()]
        return [NotNone(), _IsInstance(classes)]

    def has(self, node, name: str) -> bool:
        return bool(node.HasParameter(name))

    def write(self, node, name: str, value: object) -> None:
        if self.node_classes:
            node.SetParameter(name, "")  # marks the parameter as present; None is a valid value
            node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        elif self.type is bool:
            node.SetParameter(name, "True" if value else "False")
        elif isinstance(self.type, type) and issubclass(self.type, enum.Enum):
            node.SetParameter(name, value.name)
        else:
            node.SetParameter(name, str(value))

    def read(self, node, name: str) -> object:
        if self.node_classes:
            return node.GetNodeReference(name)
        text = node.GetParameter(name)
        if self.type is bool:
            return text == "True"
        if isinstance(self.type, type) and issubclass(self.type, enum.Enum):
            return self.type[text]
        return self.type(text)


class _NotBool(Validator):
    def validate(self, value: object) -> None:
        if isinstance(value, bool):
            raise TypeError(f"Value must be an int, is bool {value!r}")


def _storage_for(annotation: object, owner: str) -> _Storage:
    """The storage of a parameter's (un-Annotated) type; a clear error for types the stand-in cannot keep."""
    if annotation in (bool, int, float, str, pathlib.Path) or (
        isinstance(annotation, type) and issubclass(annotation, enum.Enum)
    ):
        return _Storage(annotation)
    if isinstance(annotation, type) and issubclass(annotation, slicer.vtkMRMLNode):
        return _Storage(annotation, (annotation,))
    if typing.get_origin(annotation) is typing.Union:
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        if all(isinstance(member, type) and issubclass(member, slicer.vtkMRMLNode) for member in members):
            return _Storage(annotation, tuple(members))
    raise TypeError(
        f"{owner}: the stand-in parameterNodeWrapper cannot keep a {annotation!r}; "
        "use a plain value, an MRML node class, or extend Testing/slicer_app_stand_ins.py."
    )


class _Parameter:
    def __init__(self, name: str, storage: _Storage, validators: list[Validator], default: object, hint: object):
        self.name, self.storage, self.validators, self.default, self.hint = name, storage, validators, default, hint

    def write(self, node, value: object) -> None:
        for validator in self.validators:
            try:
                validator.validate(value)
            except (TypeError, ValueError) as error:
                raise type(error)(f"parameter {self.name!r}: {error}") from None
        self.storage.write(node, self.name, value)


def _split_annotated(hint: object) -> tuple[object, list[object]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, list(extras)
    return hint, []


#: Names the wrapper adds to the class; a parameter may not use them (as in Slicer).
_RESERVED = (
    "allParameters",
    "parameterNode",
    "default",
    "dataType",
    "getValue",
    "setValue",
    "connectGui",
    "disconnectGui",
    "StartModify",
    "EndModify",
    "AddObserver",
    "RemoveObserver",
    "Modified",
)


def _wrapper_methods() -> dict[str, object]:
    def __init__(self, parameterNode) -> None:
        if parameterNode is None:
            raise ValueError("a parameterNodeWrapper needs a parameter node, got None")
        self.parameterNode = parameterNode
        self._guis: dict[int, object] = {}
        with slicer.util.NodeModify(parameterNode):
            for parameter in self.allParameters.values():
                if not parameter.storage.has(parameterNode, parameter.name):
                    parameter.write(parameterNode, parameter.default)

    def getValue(self, name: str) -> object:
        return getattr(self, self._checked(name))

    def setValue(self, name: str, value: object) -> None:
        setattr(self, self._checked(name), value)

    def _checked(self, name: str) -> str:
        if name not in self.allParameters:
            raise ValueError(f"Cannot find a parameter named {name!r}; parameters: {sorted(self.allParameters)}")
        return name

    def default(self, name: str) -> Default:
        return Default(self.allParameters[self._checked(name)].default)

    def connectGui(self, gui: object) -> int:
        # Binding widgets needs Slicer's GUI connectors (Qt): only the request is recorded.
        tag = len(self._guis) + 1
        self._guis[tag] = gui
        return tag

    def disconnectGui(self, tag: int) -> None:
        self._guis.pop(tag, None)

    return {
        "__init__": __init__,
        "getValue": getValue,
        "setValue": setValue,
        "_checked": _checked,
        "default": default,
        "connectGui": connectGui,
        "disconnectGui": disconnectGui,
        "StartModify": lambda self: self.parameterNode.StartModify(),
        "EndModify": lambda self, wasModified: self.parameterNode.EndModify(wasModified),
        "AddObserver": lambda self, event, callback, priority=0.0: self.parameterNode.AddObserver(
            event, callback, priority
        ),
        "RemoveObserver": lambda self, tag: self.parameterNode.RemoveObserver(tag),
        "Modified": lambda self: self.parameterNode.Modified(),
    }


def _parameter_property(parameter: _Parameter) -> property:
    def read(self) -> object:
        return parameter.storage.read(self.parameterNode, parameter.name)

    def write(self, value: object) -> None:
        with slicer.util.NodeModify(self.parameterNode):  # one ModifiedEvent per assignment
            parameter.write(self.parameterNode, value)

    return property(read, write)


def parameterNodeWrapper(classtype: type | None = None):
    """``@parameterNodeWrapper``: typed properties over a ``vtkMRMLScriptedModuleNode`` (see module docstring)."""

    def wrap(cls: type) -> type:
        hints = typing.get_type_hints(cls, include_extras=True)  # as Slicer: string annotations are evaluated
        parameters: dict[str, _Parameter] = {}
        for name, hint in hints.items():
            if name in _RESERVED:
                raise ValueError(f"Cannot use reserved name {name!r} in a parameterNodeWrapper")
            base, extras = _split_annotated(hint)
            owner = f"{cls.__name__}.{name}"
            storage = _storage_for(base, owner)
            validators = [extra for extra in extras if isinstance(extra, Validator)]
            defaults = [extra for extra in extras if isinstance(extra, Default)]
            unused = [extra for extra in extras if not isinstance(extra, Validator | Default)]
            if unused:
                logging.warning(f"{owner}: unused annotations {unused}")
            if hasattr(cls, name):  # as Slicer: a default inherited from a base class counts
                default = getattr(cls, name)
            else:
                default = defaults[0].value if defaults else storage.default
            parameter = _Parameter(name, storage, storage.implied_validators() + validators, default, hint)
            parameters[name] = parameter
            setattr(cls, name, _parameter_property(parameter))
        cls.allParameters = parameters
        cls.dataType = staticmethod(lambda name: parameters[name].hint)
        cls._is_parameter_node_wrapper = True
        for name, method in _wrapper_methods().items():
            setattr(cls, name, method)
        return cls

    return wrap if classtype is None else wrap(classtype)


def _parameter_node_wrapper_module() -> types.ModuleType:
    module = types.ModuleType("slicer.parameterNodeWrapper", "Stand-in (Testing/slicer_app_stand_ins.py).")
    for name in ("parameterNodeWrapper", "Validator", "NotNone", "WithinRange", "Minimum", "Maximum", "Choice"):
        setattr(module, name, globals()[name])
    module.Default = Default
    module.isParameterNodeWrapper = lambda obj: getattr(obj, "_is_parameter_node_wrapper", False)
    return module


# --------------------------------------------------------------------------- ScriptedLoadableModule


class ScriptedLoadableModule:
    """Fills the module parent's fields, finds the icon in ``Resources/Icons``, registers the self-test."""

    def __init__(self, parent: ModuleParent) -> None:
        self.parent = parent
        self.moduleName = type(self).__name__
        parent.title, parent.categories, parent.dependencies = "", [], []
        parent.contributors, parent.helpText, parent.acknowledgementText = [], "", ""
        icons = os.path.join(os.path.dirname(parent.path), "Resources", "Icons")
        for extension in (".svg", ".png"):
            icon = os.path.join(icons, self.moduleName + extension)
            if os.path.isfile(icon):
                parent.icon = _QIcon(icon)
                break
        if not hasattr(slicer, "selfTests"):
            slicer.selfTests = {}
        slicer.selfTests[self.moduleName] = self.runTest

    def resourcePath(self, filename: str) -> str:
        return os.path.join(os.path.dirname(self.parent.path), "Resources", filename)

    def runTest(self, msec: int = 100, **kwargs) -> None:
        module = sys.modules[type(self).__module__]
        test_class = getattr(module, self.moduleName + "Test", None)
        if test_class is None:
            raise AssertionError(f"Test case class not found: {type(self).__module__}.{self.moduleName}Test")
        test = test_class()
        test.messageDelay = msec
        test.runTest(**kwargs)


class ScriptedLoadableModuleWidget:
    """Needs a parent widget; the module manager connection is recorded on ``slicer.app``."""

    def __init__(self, parent=None) -> None:
        self.moduleName = type(self).__name__.removesuffix("Widget")
        if parent is None:
            raise RuntimeError(f"{type(self).__name__} without a parent widget needs the Slicer application.")
        self.parent = parent
        self.layout = parent.layout()
        slicer.app.moduleManager().connect("moduleAboutToBeUnloaded(QString)", self._onModuleAboutToBeUnloaded)

    def _onModuleAboutToBeUnloaded(self, moduleName: str) -> None:
        if moduleName == self.moduleName:
            self.cleanup()

    def resourcePath(self, filename: str) -> str:
        module = sys.modules[type(self).__module__]
        return os.path.join(os.path.dirname(module.__file__), "Resources", filename)

    def setup(self) -> None:
        pass

    def cleanup(self) -> None:
        pass


class ScriptedLoadableModuleLogic:
    """The module's singleton ``vtkMRMLScriptedModuleNode`` in ``slicer.mrmlScene``."""

    def __init__(self, parent=None) -> None:
        self.moduleName = type(self).__name__.removesuffix("Logic")
        self.isSingletonParameterNode = True

    def getParameterNode(self):
        scene = slicer.mrmlScene
        if self.isSingletonParameterNode:
            node = scene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
            if node is not None:
                if node.GetAttribute("ModuleName") != self.moduleName:  # a scene close removes it
                    node.SetAttribute("ModuleName", self.moduleName)
                return node
        else:
            for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScriptedModuleNode")):
                node = scene.GetNthNodeByClass(index, "vtkMRMLScriptedModuleNode")
                if node.GetAttribute("ModuleName") == self.moduleName:
                    return node
        return scene.AddNode(self.createParameterNode())

    def createParameterNode(self):
        scene = slicer.mrmlScene
        node = scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)  # the Python variable owns it
        if self.isSingletonParameterNode:
            node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        node.SetName(scene.GenerateUniqueName(self.moduleName))
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    """``delayDisplay`` logs the message (Slicer's shows it in a popup)."""

    def delayDisplay(self, message: str, requestedDelay=None, msec=None) -> None:
        logging.info(message)

    def runTest(self) -> None:
        logging.warning("No test is defined in " + type(self).__name__)


def _scripted_module() -> types.ModuleType:
    module = types.ModuleType("slicer.ScriptedLoadableModule", "Stand-in (Testing/slicer_app_stand_ins.py).")
    for cls in (ScriptedLoadableModule, ScriptedLoadableModuleWidget, ScriptedLoadableModuleLogic):
        setattr(module, cls.__name__, cls)
    module.ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
    return module


def _i18n_module() -> types.ModuleType:
    module = types.ModuleType("slicer.i18n", "Stand-in: no translations, the source text is returned.")
    module.tr = lambda text: text
    module.translate = lambda context, text: text
    return module


# --------------------------------------------------------------------------- installing them


def _python_slicer_launcher(folder: str) -> str:
    """A ``PythonSlicer`` in ``folder`` that runs this interpreter; return the folder.

    Slicer's launcher puts ``PythonSlicer`` (Slicer's own Python) on PATH, and code that sees
    ``slicer.app`` runs the backend with it; here it is the interpreter running the tests.
    """
    bin_folder = os.path.join(folder, "bin")
    os.makedirs(bin_folder)
    launcher = os.path.join(bin_folder, "PythonSlicer")
    with open(launcher, "w", encoding="utf-8") as script:
        script.write(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    os.chmod(launcher, 0o755)
    return bin_folder


@contextlib.contextmanager
def slicer_app_stand_ins() -> Iterator[AppRecord]:
    """Put the stand-ins in place (``sys.modules``, ``slicer`` attributes, ``PythonSlicer`` on PATH); undo them afterwards.

    Call it after the headless scene exists (``slicer.mrmlScene`` is what the Logic stand-in uses).

    Yields:
        The ``slicer.app`` stand-in.
    """
    modules = {
        "qt": _qt_like_module(
            "qt", {"QIcon": _QIcon, "QSettings": _QSettings, "QMessageBox": _QMessageBox, "QTimer": _QTimer}
        ),
        "ctk": _qt_like_module("ctk", {}),
        "slicer.ScriptedLoadableModule": _scripted_module(),
        "slicer.parameterNodeWrapper": _parameter_node_wrapper_module(),
        "slicer.i18n": _i18n_module(),
    }
    attributes = {name.removeprefix("slicer."): module for name, module in modules.items() if "." in name}
    with tempfile.TemporaryDirectory(prefix="medfuse-slicer-app-") as temporary:
        app = AppRecord(temporary)
        attributes["app"] = app
        saved_modules = {name: sys.modules.get(name) for name in modules}
        saved_attributes = {name: getattr(slicer, name, None) for name in (*attributes, "selfTests")}
        saved_path = os.environ.get("PATH", "")
        sys.modules.update(modules)
        for name, value in attributes.items():
            setattr(slicer, name, value)
        os.environ["PATH"] = os.pathsep.join([_python_slicer_launcher(temporary), saved_path])
        try:
            yield app
        finally:
            os.environ["PATH"] = saved_path
            for name, module in saved_modules.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module
            for name, value in saved_attributes.items():
                if value is None:
                    if hasattr(slicer, name):
                        delattr(slicer, name)
                else:
                    setattr(slicer, name, value)

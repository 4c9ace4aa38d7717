"""``MedFuseLib.panel.MedFusePanelWidget``, the base of every MedFuse module widget, outside Slicer.

The panel needs the Slicer application, which the test machines do not have. Here ``slicer``,
``qt``, ``vtk`` and ``ctk`` are small stand-ins put into ``sys.modules`` for the import of
``panel.py`` only (the real slicer-core used by the MRML tests is untouched); ``qt.QTimer`` is
PySide6's, so the job is polled by a real Qt timer. A small example panel drives the job flow:
Apply -> poll -> finish, cancel, a failed job, a start that raises, the first-use install, and a
scene close that discards the running job; a second kind of job on its own poller. The embedded
segment editor (``segment_editor.py``) and the self-test base (``self_test.py``) are driven the
same way.

Every module widget is also read with ``ast`` (no Slicer import): it subclasses the base and does
not define the lifecycle or job plumbing again, and its ``.ui`` has the widgets the base uses.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import sys
import time
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES = REPO_ROOT / "Modules"
MEDFUSE_LIB_DIR = MODULES / "MedFuseLib"
PANEL_FILE = MEDFUSE_LIB_DIR / "MedFuseLib" / "panel.py"
BASE_CLASS = "MedFusePanelWidget"

#: Hooks the base class calls and has no default for.
REQUIRED_HOOKS = ("_createLogic", "_startJob", "_finishJob", "_applyButtonState", "_sectionsLockedWhileRunning")
REQUIRED_ATTRIBUTES = ("START_FAILED_MESSAGE", "JOB_FAILED_MESSAGE")
#: Base methods that an override extends, so it must call the base's.
EXTENDED_METHODS = ("setup", "cleanup", "enter", "exit", "onSceneEndClose")
#: What the base class does for every panel; a widget that defines one of these again is a copy.
BASE_ONLY_METHODS = (
    "_ensureBackendRequirements",
    "_onJobProgress",
    "_newJobPoller",
    "_finish",
    "_discardJob",
    "_setRunning",
    "onApplyButton",
    "_updateApplyButton",
    "onSceneStartClose",
    "initializeParameterNode",
    "setParameterNode",
    "_releaseParameterNode",
    "onReload",
)

# --------------------------------------------------------------------------- stand-ins for the app


class FakeWidget:
    """A .ui widget as PythonQt shows it: Qt properties as attributes, ``connect(signal, slot)``."""

    def __init__(self) -> None:
        self.text = ""
        self.toolTip = ""
        self.enabled = True
        self.visible = True
        self.value = 0
        self.slots: dict[str, object] = {}

    def connect(self, signal: str, slot) -> None:
        self.slots[signal] = slot

    def click(self) -> None:
        self.slots["clicked(bool)"]()


class FakeUiWidget:
    def __init__(self, path: str) -> None:
        self.path = path
        self.scene = None

    def setMRMLScene(self, scene) -> None:
        self.scene = scene


class Observable:
    """``AddObserver``/``RemoveObserver`` as VTK objects have them; ``modified()`` fires ModifiedEvent."""

    ModifiedEvent = 33

    def __init__(self) -> None:
        self.observers: dict[int, tuple[int, object]] = {}

    def AddObserver(self, event: int, method, priority: float = 0.0) -> int:
        tag = len(self.observers) + 1
        self.observers[tag] = (event, method)
        return tag

    def RemoveObserver(self, tag: int) -> None:
        del self.observers[tag]

    def modified(self) -> None:
        for event, method in list(self.observers.values()):
            if event == self.ModifiedEvent:
                method(self, event)


class FakeScene(Observable):
    StartCloseEvent = 1
    EndCloseEvent = 2

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[FakeNode] = []

    def add(self, node: FakeNode) -> FakeNode:
        node.scene = self
        self.nodes.append(node)
        return node

    def GetSingletonNode(self, tag: str, className: str):
        return next((n for n in self.nodes if getattr(n, "singletonTag", None) == tag and n.IsA(className)), None)

    def AddNode(self, node: FakeNode) -> FakeNode:
        return self.add(node)


class FakeNode:
    def __init__(self, classes: tuple[str, ...] = ("vtkMRMLScalarVolumeNode",)) -> None:
        self.classes = classes
        self.scene = None

    def IsA(self, className: str) -> bool:
        return className in self.classes

    def GetScene(self):
        return self.scene


class FakeParameterNode(Observable):
    """A ``@parameterNodeWrapper`` node: setting a field fires ModifiedEvent, as the real one does."""

    FIELDS = ("inputVolume", "outputVolume")

    def __init__(self) -> None:
        super().__init__()
        self.inputVolume = None
        self.outputVolume = None
        self.boundTo = None

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name in self.FIELDS:
            self.modified()

    def __bool__(self) -> bool:
        return True

    def connectGui(self, ui) -> str:
        self.boundTo = ui
        return "gui-tag"

    def disconnectGui(self, tag: str) -> None:
        assert tag == "gui-tag"
        self.boundTo = None


class FakeJob:
    """A job that advances one step per poll and is done after ``steps`` polls (or one poll after cancel)."""

    def __init__(self, steps: int = 3, error: str = "") -> None:
        self.steps, self.error = steps, error
        self.polls = 0
        self.fraction, self.stage, self.messages = 0.0, "starting", []
        self.cancelled = self.cleaned = False

    def poll(self) -> list:
        self.polls += 1
        self.fraction = min(1.0, self.polls / self.steps)
        self.stage = "running"
        self.messages.append(f"step {self.polls}")
        return []

    @property
    def done(self) -> bool:
        return self.polls >= self.steps or (self.cancelled and self.polls > 0)

    @property
    def succeeded(self) -> bool:
        return self.done and not self.cancelled and not self.error

    @property
    def error_message(self) -> str:
        return self.error

    def cancel(self) -> None:
        self.cancelled = True

    def cleanup(self) -> None:
        self.cleaned = True


class ExampleLogic:
    def __init__(self) -> None:
        self.parameterNode = FakeParameterNode()
        self.nextJob = FakeJob()
        self.startError: Exception | None = None
        self.started: list[FakeJob] = []

    def getParameterNode(self) -> FakeParameterNode:
        return self.parameterNode

    def startJob(self, parameters: FakeParameterNode) -> FakeJob:
        assert parameters is self.parameterNode
        if self.startError is not None:
            raise self.startError
        self.started.append(self.nextJob)
        return self.nextJob


class FakeInstaller:
    """``BackendInstaller.for_slicer()`` stand-in: ``missing`` packages; the install is a polled job."""

    missing: list[str] = []
    restart_required = False
    installs = 0
    python_too_old = ""

    @classmethod
    def for_slicer(cls) -> FakeInstaller:
        return cls()

    def check_python(self) -> None:
        if type(self).python_too_old:
            raise RuntimeError(type(self).python_too_old)

    def missing_requirements(self) -> list[str]:
        return list(type(self).missing)

    def confirmation_message(self, missing: list[str]) -> str:
        return "Install " + ", ".join(missing) + "?"

    def start(self, missing: list[str]) -> FakeJob:
        type(self).installs += 1
        return FakeJob(steps=2)

    def outcome(self, job: FakeJob) -> types.SimpleNamespace:
        assert job.succeeded
        type(self).missing = []
        return types.SimpleNamespace(restart_required=type(self).restart_required)


class PollTimer:
    """``qt.QTimer`` as PythonQt shows it, on a real PySide6 timer."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self._timer = QTimer()

    def setInterval(self, milliseconds: int) -> None:
        self._timer.setInterval(milliseconds)

    def connect(self, signal: str, slot) -> None:
        assert signal == "timeout()"
        self._timer.timeout.connect(slot)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def isActive(self) -> bool:
        return self._timer.isActive()


class App:
    """What the example panel's test reads back: dialogs shown, the scene, the last .ui loaded."""

    def __init__(self) -> None:
        self.scene = FakeScene()
        self.errors: list[str] = []
        self.infos: list[str] = []
        self.reloaded: list[str] = []
        self.ui: types.SimpleNamespace | None = None
        self.uiWidget: FakeUiWidget | None = None
        self.ct: FakeNode | None = None
        self.settings: dict[str, object] = {}  # qt.QSettings of this app


def _stand_in_modules(app: App) -> dict[str, types.ModuleType]:
    slicer = types.ModuleType("slicer")
    util = types.ModuleType("slicer.util")
    i18n = types.ModuleType("slicer.i18n")
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModuleWidget:
        def __init__(self, parent=None) -> None:
            self.moduleName = type(self).__name__.removesuffix("Widget")
            self.parent = parent
            self.layout = types.SimpleNamespace(addWidget=lambda widget: None)

        def setup(self) -> None:
            pass

        def resourcePath(self, filename: str) -> str:
            return f"{self.moduleName}/Resources/{filename}"

        def onReload(self) -> None:
            app.reloaded.append(self.moduleName)

    class VTKObservationMixin:
        def __init__(self) -> None:
            self.Observations: list[tuple] = []  # (obj, event, method, tag)

        def addObserver(self, obj, event, method) -> None:
            self.Observations.append((obj, event, method, obj.AddObserver(event, method)))

        def removeObserver(self, obj, event, method) -> None:
            for observation in [o for o in self.Observations if o[:3] == (obj, event, method)]:
                obj.RemoveObserver(observation[3])
                self.Observations.remove(observation)

        def removeObservers(self) -> None:
            for obj, _event, _method, tag in self.Observations:
                obj.RemoveObserver(tag)
            self.Observations.clear()

    @contextlib.contextmanager
    def tryWithErrorDisplay(message=None, show=True, waitCursor=False):
        try:
            yield
        except Exception as error:  # as Slicer's: show the message with the error, then re-raise
            app.errors.append(f"{message}\n\n{error}")
            raise

    def loadUI(path: str) -> FakeUiWidget:
        app.uiWidget = FakeUiWidget(path)
        return app.uiWidget

    def childWidgetVariables(uiWidget: FakeUiWidget) -> types.SimpleNamespace:
        names = ("applyButton", "statusLabel", "progressBar", "inputsCollapsibleButton", "outputsCollapsibleButton")
        app.ui = types.SimpleNamespace(**{name: FakeWidget() for name in names})
        return app.ui

    util.VTKObservationMixin = VTKObservationMixin
    util.tryWithErrorDisplay = tryWithErrorDisplay
    util.loadUI = loadUI
    util.childWidgetVariables = childWidgetVariables
    util.getNodesByClass = lambda className: [node for node in app.scene.nodes if node.IsA(className)]
    util.errorDisplay = lambda text, **kwargs: app.errors.append(text)
    util.infoDisplay = lambda text, **kwargs: app.infos.append(text)
    util.confirmOkCancelDisplay = lambda text, **kwargs: True
    i18n.tr = lambda text: text
    scripted.ScriptedLoadableModuleWidget = ScriptedLoadableModuleWidget
    slicer.util, slicer.i18n, slicer.ScriptedLoadableModule = util, i18n, scripted
    slicer.app = types.SimpleNamespace(processEvents=lambda: None)
    slicer.mrmlScene = app.scene

    class vtkMRMLSegmentEditorNode(FakeNode):
        def __init__(self) -> None:
            super().__init__(("vtkMRMLSegmentEditorNode",))

        def SetSingletonTag(self, tag: str) -> None:
            self.singletonTag = tag

    slicer.vtkMRMLSegmentEditorNode = vtkMRMLSegmentEditorNode

    qt = types.ModuleType("qt")
    qt.QTimer = PollTimer

    class QSettings:
        def value(self, key: str, default: object = None) -> object:
            return app.settings.get(key, default)

        def setValue(self, key: str, value: object) -> None:
            app.settings[key] = value

    qt.QSettings = QSettings
    vtk = types.ModuleType("vtk")
    vtk.vtkCommand = types.SimpleNamespace(ModifiedEvent=Observable.ModifiedEvent)
    ctk = types.ModuleType("ctk")
    return {
        "slicer": slicer,
        "slicer.util": util,
        "slicer.i18n": i18n,
        "slicer.ScriptedLoadableModule": scripted,
        "qt": qt,
        "vtk": vtk,
        "ctk": ctk,
    }


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def qt_application():
    pytest.importorskip("PySide6.QtWidgets", reason="PySide6 stands in for qt.QTimer")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    # A QApplication (not a QCoreApplication), so the .ui tests in the same process can load widgets.
    return QApplication.instance() or QApplication([])


@pytest.fixture
def app(qt_application) -> App:
    return App()


@pytest.fixture
def panel(app: App, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``MedFuseLib/panel.py`` imported against the stand-ins (all undone after the test)."""
    for name, module in _stand_in_modules(app).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(MEDFUSE_LIB_DIR))
    monkeypatch.delitem(sys.modules, "MedFuseLib.segment_editor", raising=False)  # import it on these stand-ins
    spec = importlib.util.spec_from_file_location("medfuse_panel_under_test", PANEL_FILE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    FakeInstaller.missing, FakeInstaller.restart_required, FakeInstaller.installs = [], False, 0
    FakeInstaller.python_too_old = ""
    monkeypatch.setattr(module, "BackendInstaller", FakeInstaller)
    # The Backend section's Qt widgets need the application; its setting is tested in test_panel_backend.py.
    monkeypatch.setattr(module, "BackendSection", lambda: types.SimpleNamespace(widget=None, refresh=lambda: None))
    return module


@pytest.fixture
def widget(panel: types.ModuleType, app: App):
    """The example panel, set up in a scene with a label map and a CT."""

    class MedFuseExampleWidget(panel.MedFusePanelWidget):
        POLL_INTERVAL_MS = 1
        START_FAILED_MESSAGE = "Example could not start."
        JOB_FAILED_MESSAGE = "Example failed."

        def _createLogic(self) -> ExampleLogic:
            return ExampleLogic()

        def _outputNodes(self) -> tuple:
            return (self._parameterNode.outputVolume,)

        def _startJob(self) -> FakeJob:
            return self.logic.startJob(self._parameterNode)

        def _finishJob(self, job, outputVolume) -> None:
            self.finished.append((job, outputVolume))
            self.ui.statusLabel.text = "Done."

        def _applyButtonState(self) -> tuple[bool, str]:
            ready = bool(self._parameterNode and self._parameterNode.inputVolume)
            return ready, "Run the example." if ready else "Select a volume."

        def _sectionsLockedWhileRunning(self) -> tuple:
            return (self.ui.inputsCollapsibleButton, self.ui.outputsCollapsibleButton)

    app.scene.add(FakeNode(("vtkMRMLScalarVolumeNode", "vtkMRMLLabelMapVolumeNode")))
    app.ct = app.scene.add(FakeNode())
    panelWidget = MedFuseExampleWidget(types.SimpleNamespace(isEntered=True))
    panelWidget.finished = []
    panelWidget.setup()
    return panelWidget


def _run_until_idle(widget, seconds: float = 10.0) -> None:
    """Let the Qt timer poll the job until the panel has no job (the real event loop, 1 ms polls)."""
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + seconds
    while widget._job is not None:
        assert time.monotonic() < deadline, "the job was not finished by the poll timer"
        QCoreApplication.processEvents()
        time.sleep(0.001)


def _locked(app: App) -> bool:
    return not app.ui.inputsCollapsibleButton.enabled and not app.ui.outputsCollapsibleButton.enabled


# --------------------------------------------------------------------------- the job flow


def test_setup_binds_the_parameter_node_and_picks_a_volume(widget, app: App):
    assert app.uiWidget.path == "MedFuseExample/Resources/UI/MedFuseExample.ui"
    assert app.uiWidget.scene is app.scene
    parameters = widget._parameterNode
    assert parameters.boundTo is app.ui
    assert parameters.inputVolume is app.ct, "the first scalar volume that is not a label map"
    assert [o[:3] for o in widget.Observations if o[0] is parameters] == [
        (parameters, 33, widget._onParameterNodeModified)
    ]
    assert app.ui.progressBar.visible is False
    assert (app.ui.applyButton.text, app.ui.applyButton.enabled, app.ui.applyButton.toolTip) == (
        "Apply",
        True,
        "Run the example.",
    )


def test_apply_polls_the_job_and_finishes_it(widget, app: App):
    output = app.scene.add(FakeNode())
    widget._parameterNode.outputVolume = output
    app.ui.applyButton.click()

    job = widget.logic.started[0]
    assert widget._job is job and widget._jobPoller.isActive()
    assert (app.ui.applyButton.text, app.ui.applyButton.enabled) == ("Cancel", True)
    assert app.ui.progressBar.visible and app.ui.progressBar.value == 0
    assert app.ui.statusLabel.text == "Starting the backend..."
    assert _locked(app)

    _run_until_idle(widget)

    assert widget.finished == [(job, output)]
    assert job.polls == job.steps and not job.cleaned, "a succeeded job's files are the subclass's to read"
    assert app.ui.progressBar.value == 100 and app.ui.statusLabel.text == "Done."
    assert not widget._jobPoller.isActive() and not _locked(app)
    assert app.ui.applyButton.text == "Apply" and app.errors == []


def test_an_output_deleted_while_the_job_runs_is_passed_as_none(widget, app: App):
    output = app.scene.add(FakeNode())
    widget._parameterNode.outputVolume = output
    app.ui.applyButton.click()
    output.scene = None  # the user deleted the node
    _run_until_idle(widget)
    assert widget.finished == [(widget.logic.started[0], None)]


def test_cancel_stops_the_job_and_adds_nothing(widget, app: App):
    app.ui.applyButton.click()
    job = widget.logic.started[0]
    app.ui.applyButton.click()  # the button is Cancel now
    assert job.cancelled and app.ui.statusLabel.text == "Cancelling..."

    _run_until_idle(widget)

    assert widget.finished == [] and job.cleaned
    assert app.ui.statusLabel.text == "Cancelled; nothing was added to the scene."
    assert app.errors == [] and not _locked(app) and app.ui.applyButton.text == "Apply"


def test_a_failed_job_shows_its_error(widget, app: App):
    widget.logic.nextJob = FakeJob(steps=2, error="CUDA out of memory; choose the CPU device.")
    app.ui.applyButton.click()
    _run_until_idle(widget)

    assert widget.finished == [] and widget.logic.started[0].cleaned
    assert app.ui.statusLabel.text == "Failed: CUDA out of memory; choose the CPU device."
    assert app.errors == ["Example failed.\n\nCUDA out of memory; choose the CPU device."]
    assert not _locked(app)


def test_a_start_that_raises_is_shown_and_leaves_the_panel_idle(widget, app: App):
    widget.logic.startError = ValueError("Select two different volumes.")
    with pytest.raises(ValueError):  # Slicer's tryWithErrorDisplay shows the error, then re-raises
        app.ui.applyButton.click()
    assert app.errors == ["Example could not start.\n\nSelect two different volumes."]
    assert widget._job is None and not widget._jobPoller.isActive()
    assert app.ui.applyButton.text == "Apply" and app.ui.progressBar.visible is False


def test_first_apply_installs_the_backend_in_the_background_and_may_ask_for_a_restart(widget, app: App):
    FakeInstaller.missing, FakeInstaller.restart_required = ["torch==2.13.0"], True
    app.ui.applyButton.click()
    assert FakeInstaller.installs == 1 and widget.logic.started == []
    assert widget._job is not None and app.ui.applyButton.text == "Cancel" and _locked(app)  # polled, not blocking
    _run_until_idle(widget)
    assert app.infos == ["The packages were installed. Restart Slicer, then press Apply again."]
    assert widget.logic.started == [] and app.ui.applyButton.text == "Apply"

    FakeInstaller.missing, FakeInstaller.restart_required = ["torch==2.13.0"], False
    app.ui.applyButton.click()
    _run_until_idle(widget)
    assert FakeInstaller.installs == 2 and widget.logic.started == []
    assert app.ui.statusLabel.text == "The packages are installed; press Apply to run."

    app.ui.applyButton.click()  # checked once per session: no second look at the requirements
    assert FakeInstaller.installs == 2 and len(widget.logic.started) == 1
    _run_until_idle(widget)
    assert widget.finished and app.errors == []


def test_cancelling_the_installation_says_how_to_resume(widget, app: App):
    FakeInstaller.missing = ["torch==2.13.0"]
    app.ui.applyButton.click()
    app.ui.applyButton.click()  # the button reads Cancel while pip runs
    _run_until_idle(widget)
    assert app.ui.statusLabel.text == "Installation cancelled; press Apply to resume it."
    assert widget.logic.started == [] and app.errors == [] and not _locked(app)


def test_an_old_slicer_gets_one_sentence(widget, app: App):
    FakeInstaller.missing, FakeInstaller.python_too_old = ["torch==2.13.0"], "Install 3D Slicer 5.10 or later."
    with pytest.raises(RuntimeError):  # shown by tryWithErrorDisplay, then re-raised as in Slicer
        app.ui.applyButton.click()
    assert app.errors == ["Example could not start.\n\nInstall 3D Slicer 5.10 or later."]
    assert FakeInstaller.installs == 0 and widget._job is None


def test_scene_close_discards_the_running_job(widget, app: App):
    app.ui.applyButton.click()
    job = widget.logic.started[0]
    parameters = widget._parameterNode

    widget.onSceneStartClose(app.scene, FakeScene.StartCloseEvent)

    assert job.cancelled and job.cleaned and widget._job is None
    assert not widget._jobPoller.isActive() and not _locked(app)
    assert parameters.boundTo is None and widget._parameterNode is None
    assert all(observed[0] is not parameters for observed in widget.Observations)
    assert widget.finished == []

    widget.onSceneEndClose(app.scene, FakeScene.EndCloseEvent)  # the module is shown: bind again
    assert widget._parameterNode is parameters and parameters.boundTo is app.ui


def test_exit_releases_the_gui_but_the_job_runs_on(widget, app: App):
    app.ui.applyButton.click()
    widget.exit()
    assert widget._parameterNode.boundTo is None
    _run_until_idle(widget)
    assert len(widget.finished) == 1


def test_cleanup_discards_the_job_and_every_observer(widget, app: App):
    app.ui.applyButton.click()
    job = widget.logic.started[0]
    widget.cleanup()
    assert job.cancelled and job.cleaned and widget.Observations == []
    assert not widget._jobPoller.isActive()


def test_reload_drops_the_module_lib_packages(widget, app: App, monkeypatch: pytest.MonkeyPatch):
    for name in ("MedFuseExampleLib", "MedFuseExampleLib.Logic", "MedFuseLib.fake_for_reload"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    widget.onReload()
    assert app.reloaded == ["MedFuseExample"]
    assert not {"MedFuseExampleLib", "MedFuseExampleLib.Logic", "MedFuseLib.fake_for_reload"} & set(sys.modules)


# --------------------------------------------------------------------------- a second kind of job


def _run_poller_until_idle(poller, seconds: float = 10.0) -> None:
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + seconds
    while poller.running:
        assert time.monotonic() < deadline, "the job was not finished by the poller"
        QCoreApplication.processEvents()
        time.sleep(0.001)


def test_a_secondary_job_is_polled_beside_the_main_one(widget, app: App):
    progress, done = [], []
    poller = widget._newJobPoller(lambda job: progress.append(job.polls), done.append)
    app.ui.applyButton.click()
    secondary = FakeJob(steps=4)
    poller.start(secondary)
    assert poller.running and poller.job is secondary and poller.isActive()

    _run_poller_until_idle(poller)
    _run_until_idle(widget)

    assert progress == [1, 2, 3, 4] and done == [secondary] and not secondary.cleaned
    assert not poller.running and not poller.isActive()
    assert len(widget.finished) == 1 and widget.finished[0][0] is widget.logic.started[0]
    assert not _locked(app) and app.ui.applyButton.text == "Apply"


def _start_secondary_job(widget) -> tuple:
    """A long second job on a poller of the panel's: (poller, job, the jobs its onDone got)."""
    done: list[FakeJob] = []
    poller = widget._newJobPoller(lambda job: None, done.append)
    secondary = FakeJob(steps=100)
    poller.start(secondary)
    return poller, secondary, done


def test_a_cancelled_secondary_job_is_done_and_the_panel_untouched(widget, app: App):
    poller, secondary, done = _start_secondary_job(widget)
    poller.cancel()
    _run_poller_until_idle(poller)
    assert done == [secondary] and secondary.cancelled and not secondary.succeeded
    assert widget._job is None and app.ui.applyButton.text == "Apply" and not _locked(app)


def test_cleanup_discards_a_secondary_job(widget, app: App):
    poller, secondary, done = _start_secondary_job(widget)
    widget.cleanup()
    assert secondary.cancelled and secondary.cleaned and done == []
    assert not poller.running and not poller.isActive()


# --------------------------------------------------------------------------- the module widgets


def _module_files() -> list[Path]:
    """``Modules/<Name>/<Name>.py`` of every module whose Lib has the panel, ``<Name>Lib/Widget.py``."""
    return sorted(
        path for path in MODULES.glob("*/*.py") if path.stem == path.parent.name and _widget_file(path).is_file()
    )


def _widget_file(module_file: Path) -> Path:
    """Where a module's panel lives: imported by the thin module file after the Slicer version check."""
    return module_file.parent / f"{module_file.stem}Lib" / "Widget.py"


MODULE_FILES = _module_files()


def _widget_class(module_file: Path) -> ast.ClassDef:
    path = _widget_file(module_file)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = f"{module_file.stem}Widget"
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


def _ui_names_used(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "ui"
    }


def test_the_three_panels_are_checked():
    names = {path.stem for path in MODULE_FILES}
    assert {"MedFuseHemorrhage", "MedFuseRegistration", "MedFuseSuperResolution"} <= names


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_widget_subclasses_the_panel_base_without_copying_it(module_file: Path):
    widget = _widget_class(module_file)
    bases = [ast.unparse(base) for base in widget.bases]
    assert bases == [BASE_CLASS], f"{widget.name} derives from {bases}, not {BASE_CLASS} alone"
    source = _widget_file(module_file).read_text(encoding="utf-8")
    assert f"from MedFuseLib.panel import {BASE_CLASS}" in source
    defined = {node.name for node in widget.body if isinstance(node, ast.FunctionDef)}
    copied = sorted(defined & set(BASE_ONLY_METHODS))
    assert not copied, f"{widget.name} defines {copied} again; the base class {BASE_CLASS} has them"


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_widget_polls_jobs_through_the_base(module_file: Path):
    timers = [
        node.lineno
        for node in ast.walk(_widget_class(module_file))
        if isinstance(node, ast.Attribute) and node.attr == "QTimer"
    ]
    assert not timers, f"{module_file.name}:{timers} makes its own job timer; use self._newJobPoller()"


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_module_ui_has_the_widgets_the_base_uses(module_file: Path):
    ui_file = module_file.parent / "Resources" / "UI" / f"{module_file.stem}.ui"
    names = {element.get("name") for element in ET.parse(ui_file).getroot().iter("widget")}
    missing = sorted(_ui_names_used(PANEL_FILE) - names)
    assert not missing, f"{ui_file.name} lacks {missing}, which {BASE_CLASS} uses"


def _methods(widget: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in widget.body if isinstance(node, ast.FunctionDef)}


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_widget_implements_the_hooks(module_file: Path):
    widget = _widget_class(module_file)
    methods = _methods(widget)
    assigned = {
        target.id
        for node in widget.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    missing = sorted(set(REQUIRED_HOOKS) - set(methods)) + sorted(set(REQUIRED_ATTRIBUTES) - assigned)
    assert not missing, f"{widget.name} does not implement {missing} (see the MedFuseLib.panel docstring)"
    # _finishJob(job, *outputNodes) gets one node per entry of what _outputNodes() returns (default: none).
    count = _returned_tuple_length(methods["_outputNodes"]) if "_outputNodes" in methods else 0
    finish = methods["_finishJob"].args
    if count is not None and not finish.vararg:
        taken = len(finish.args) - 2  # self, job
        assert taken == count, f"{widget.name}._finishJob takes {taken} output nodes, _outputNodes() returns {count}"


def _returned_tuple_length(method: ast.FunctionDef) -> int | None:
    """Length of the tuple literal the method returns; None when it returns anything else."""
    returns = [node.value for node in ast.walk(method) if isinstance(node, ast.Return)]
    if len(returns) == 1 and isinstance(returns[0], ast.Tuple):
        return len(returns[0].elts)
    return None


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_widget_overrides_call_the_base(module_file: Path):
    widget = _widget_class(module_file)
    problems = []
    for name, method in _methods(widget).items():
        if name not in EXTENDED_METHODS:
            continue
        calls = {
            node.func.attr
            for node in ast.walk(method)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call)
            and ast.unparse(node.func.value.func) == "super"
        }
        if name not in calls:
            problems.append(name)
    assert not problems, f"{widget.name} overrides {problems} without calling super(); the base's part is lost"


# --------------------------------------------------------------------------- the embedded segment editor


class FakeSegmentEditorWidget:
    """``qMRMLSegmentEditorWidget`` of Slicer >= 5.2: records what the panel asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))


def test_embedded_segment_editor_binds_a_singleton_node_and_follows_the_panel(monkeypatch: pytest.MonkeyPatch):
    class EditorNode:
        def SetSingletonTag(self, tag: str) -> None:
            self.tag = tag

    class Scene:
        def __init__(self) -> None:
            self.nodes: list[EditorNode] = []

        def GetSingletonNode(self, tag: str, className: str):
            assert className == "vtkMRMLSegmentEditorNode"
            return next((node for node in self.nodes if node.tag == tag), None)

        def AddNode(self, node: EditorNode) -> EditorNode:
            self.nodes.append(node)
            return node

    scene = Scene()
    slicer = types.ModuleType("slicer")
    slicer.mrmlScene, slicer.vtkMRMLSegmentEditorNode = scene, EditorNode
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    spec = importlib.util.spec_from_file_location(
        "medfuse_segment_editor_under_test", MEDFUSE_LIB_DIR / "MedFuseLib" / "segment_editor.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    editorWidget = FakeSegmentEditorWidget()
    editor = module.EmbeddedSegmentEditor(editorWidget, "MedFuseExampleSegmentEditor")
    editor.setup()
    editor.setup()  # a second panel setup reuses the scene's node
    assert len(scene.nodes) == 1 and scene.nodes[0].tag == "MedFuseExampleSegmentEditor"
    assert editorWidget.calls[:3] == [
        ("setMRMLScene", scene),
        ("setSourceVolumeNodeSelectorVisible", False),
        ("setMRMLSegmentEditorNode", scene.nodes[0]),
    ]
    editorWidget.calls.clear()
    editor.edit("segmentation", "ct")
    editor.enter()
    editor.exit()
    editor.cleanup()
    assert editorWidget.calls == [
        ("setSegmentationNode", "segmentation"),
        ("setSourceVolumeNode", "ct"),
        ("installKeyboardShortcuts",),
        ("setActiveEffect", None),
        ("uninstallKeyboardShortcuts",),
        ("setActiveEffect", None),
    ]
    scene.nodes.clear()  # the scene was closed
    editor.onSceneEndClose()
    assert editorWidget.calls[-1] == ("setMRMLSegmentEditorNode", scene.nodes[0])


# --------------------------------------------------------------------------- the in-Slicer self-tests


def test_self_test_runs_the_named_tests_on_a_cleared_scene(monkeypatch: pytest.MonkeyPatch):
    import unittest

    cleared, shown = [], []
    slicer = types.ModuleType("slicer")
    slicer.mrmlScene = types.SimpleNamespace(Clear=lambda: cleared.append(True))
    scripted = types.ModuleType("slicer.ScriptedLoadableModule")

    class ScriptedLoadableModuleTest(unittest.TestCase):
        def delayDisplay(self, message: str) -> None:
            shown.append(message)

    scripted.ScriptedLoadableModuleTest = ScriptedLoadableModuleTest
    monkeypatch.setitem(sys.modules, "slicer", slicer)
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", scripted)
    spec = importlib.util.spec_from_file_location(
        "medfuse_self_test_under_test", MEDFUSE_LIB_DIR / "MedFuseLib" / "self_test.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    ran = []

    class MedFuseExampleTest(module.MedFuseSelfTest):
        TESTS = ("test_Second", "test_NoModel", "test_First")

        def test_First(self) -> None:
            ran.append(("first", len(cleared)))

        def test_Second(self) -> None:
            ran.append(("second", len(cleared)))

        def test_NoModel(self) -> None:
            self.skipTest("no model is installed")

    MedFuseExampleTest().runTest()
    assert ran == [("second", 1), ("first", 3)] and len(cleared) == 3
    assert shown == ["Skipped test_NoModel: no model is installed"]


def _test_class(module_file: Path) -> ast.ClassDef | None:
    path = module_file.parent / f"{module_file.stem}Lib" / "SelfTest.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == f"{module_file.stem}Test"), None)


@pytest.mark.parametrize("module_file", MODULE_FILES, ids=lambda path: path.stem)
def test_module_self_test_uses_the_base(module_file: Path):
    test = _test_class(module_file)
    assert test is not None, f"{module_file.stem}Lib/SelfTest.py has no {module_file.stem}Test"
    assert [ast.unparse(base) for base in test.bases] == ["MedFuseSelfTest"]
    methods = _methods(test)
    assert not {"runTest", "setUp"} & set(methods), f"{test.name} runs its tests itself; MedFuseSelfTest does"
    named = [
        ast.literal_eval(node.value)
        for node in test.body
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["TESTS"]
    ]
    assert len(named) == 1 and named[0], f"{test.name} names no TESTS"
    assert set(named[0]) == {name for name in methods if name.startswith("test_")}, "TESTS lists every test_ once"


# --------------------------------------------------------------------------- the model selector


class FakeComboBox(FakeWidget):
    """A QComboBox as PythonQt shows it; setting ``currentIndex`` emits currentIndexChanged unless blocked."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str]] = []
        self._index, self.blocked = -1, False

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def currentIndex(self) -> int:
        return self._index

    @currentIndex.setter
    def currentIndex(self, index: int) -> None:
        self._index = index
        if not self.blocked and "currentIndexChanged(int)" in self.slots:
            self.slots["currentIndexChanged(int)"](index)

    def blockSignals(self, blocked: bool) -> None:
        self.blocked = blocked

    def clear(self) -> None:
        self.items.clear()
        self.currentIndex = -1

    def addItem(self, text: str, data: str) -> None:
        self.items.append((text, data))
        if self._index < 0:
            self.currentIndex = 0

    def findData(self, data: str) -> int:
        return next((n for n, item in enumerate(self.items) if item[1] == data), -1)

    def itemData(self, index: int) -> str:
        return self.items[index][1]


def test_model_selector_follows_the_parameter_node(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(MEDFUSE_LIB_DIR))
    from MedFuseLib.model_selector import ModelSelector

    def bundle(version: str, simulated: bool):
        manifest = types.SimpleNamespace(
            id="demo", version=version, title="Demo", license="CC0-1.0", intended_use="Tests.", data={}
        )
        manifest.simulated = simulated
        return types.SimpleNamespace(manifest=manifest)

    bundles = [bundle("1.0.0", False), bundle("2.0.0", True)]
    models = types.SimpleNamespace(
        installed=lambda: list(bundles),
        default=lambda: (bundles or [None])[-1],
        noModelMessage=lambda: "Install a model.",
    )
    combo, info, warning = FakeComboBox(), FakeWidget(), FakeWidget()
    parameters = types.SimpleNamespace(model="")
    warnings = lambda manifest: ["Simulated."] if manifest.simulated else []  # noqa: E731
    selector = ModelSelector(combo, models, "model", info, warning, warnings)
    combo.connect("currentIndexChanged(int)", lambda index: selector.onSelected(index, parameters))

    selector.refresh(parameters)  # no choice saved: the default, written back
    assert [data for _text, data in combo.items] == ["demo@1.0.0", "demo@2.0.0"] and combo.enabled
    assert parameters.model == "demo@2.0.0" and combo.currentIndex == 1
    assert info.text.startswith("Demo (version 2.0.0)\nLicence: CC0-1.0") and warning.text == "Simulated."

    parameters.model = "demo@1.0.0"  # e.g. a scene loaded with another choice
    selector.show(parameters)
    assert combo.currentIndex == 0 and warning.text == "" and "version 1.0.0" in info.text

    parameters.model = "demo@9.9.9"  # saved with the scene, not installed here: the first one
    selector.show(parameters)
    assert combo.currentIndex == 0 and parameters.model == "demo@9.9.9"

    bundles.clear()
    selector.refresh(parameters)
    assert combo.count == 0 and not combo.enabled
    assert (info.text, warning.text) == ("Install a model.", "")


def test_the_base_runs_an_embedded_segment_editor_with_the_panel(widget, app: App):
    editorWidget = FakeSegmentEditorWidget()
    editor = widget._embedSegmentEditor(editorWidget, "MedFuseExampleSegmentEditor")
    assert widget._segmentEditor is editor
    [editorNode] = [node for node in app.scene.nodes if node.IsA("vtkMRMLSegmentEditorNode")]
    assert editorWidget.calls[-1] == ("setMRMLSegmentEditorNode", editorNode)
    editorWidget.calls.clear()

    widget.enter()
    widget.exit()
    app.scene.nodes.remove(editorNode)  # the scene was closed
    widget.onSceneEndClose(app.scene, FakeScene.EndCloseEvent)
    widget.cleanup()

    [newNode] = [node for node in app.scene.nodes if node.IsA("vtkMRMLSegmentEditorNode")]
    assert editorWidget.calls == [
        ("installKeyboardShortcuts",),
        ("setActiveEffect", None),
        ("uninstallKeyboardShortcuts",),
        ("setMRMLSegmentEditorNode", newNode),
        ("setActiveEffect", None),
    ]

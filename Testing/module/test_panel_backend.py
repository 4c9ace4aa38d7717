"""The panel's side of the Backend setting: the consent dialog, connection problems as one sentence, the section.

The example panel of :mod:`Testing.module.test_panel_base` (the same stand-ins for ``slicer``/``qt``)
with the Backend setting in its ``qt.QSettings`` set to a server: a real ``medfuse serve`` on loopback,
or a port where nothing listens.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from Testing.backend.serve_harness import free_port, running_server
from Testing.module import test_panel_base as base
from Testing.module.test_panel_base import App, FakeInstaller, _run_until_idle

# The example panel's fixtures, used here by name.
qt_application, app, panel, widget = base.qt_application, base.app, base.panel, base.widget


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi")
    with running_server(tmp_path_factory.mktemp("home")) as running:
        yield running


class Questions(list):
    """Consent questions the panel showed; ``answer`` is the user's (default: agree)."""

    answer = True


@pytest.fixture
def questions(widget, monkeypatch: pytest.MonkeyPatch) -> Questions:
    shown = Questions()

    def confirm(text: str, **kwargs) -> bool:
        shown.append(text)
        return shown.answer

    monkeypatch.setattr(sys.modules["slicer"].util, "confirmOkCancelDisplay", confirm)
    return shown


def _use_server(url: str, token: str) -> None:
    from MedFuseLib.backend_setting import useServer

    useServer(url, token, sys.modules["qt"].QSettings())  # the panel's settings store, as in Slicer


def test_declining_consent_starts_nothing_and_says_so(widget, app: App, questions, server):
    _use_server(server.url, server.token)
    questions.answer = False
    jobs = server.client.jobs()
    app.ui.applyButton.click()
    assert len(questions) == 1 and f"127.0.0.1:{server.port}" in questions[0]
    assert widget.logic.started == [] and widget._job is None
    assert app.ui.statusLabel.text.startswith(f"Nothing was sent to 127.0.0.1:{server.port};")
    assert app.errors == [] and server.client.jobs() == jobs

    app.ui.applyButton.click()
    assert len(questions) == 2, "a declined server is asked again"


def test_consent_is_asked_once_and_a_server_job_needs_no_local_install(widget, app: App, questions, server):
    _use_server(server.url, server.token)
    FakeInstaller.missing = ["torch==2.13.0"]
    app.ui.applyButton.click()
    assert len(questions) == 1 and widget.logic.started == [widget._job]
    assert FakeInstaller.installs == 0, "the server has the backend's packages"
    _run_until_idle(widget)
    app.ui.applyButton.click()
    assert len(questions) == 1 and len(widget.logic.started) == 2
    _run_until_idle(widget)
    assert app.errors == []


@pytest.mark.parametrize("problem", ["stopped", "token"])
def test_a_connection_problem_is_one_sentence_in_the_status(widget, app: App, questions, server, problem):
    if problem == "stopped":
        _use_server(f"http://127.0.0.1:{free_port()}", "t")
        expected = "Cannot reach the MedFuse server at http://127.0.0.1:"
    else:
        _use_server(server.url, "not-the-token")
        expected = f"The server 127.0.0.1:{server.port} did not accept the token;"
    app.ui.applyButton.click()
    status = app.ui.statusLabel.text
    assert status.startswith(expected) and "\n" not in status and "Traceback" not in status
    assert widget.logic.started == [] and widget._job is None and app.errors == []
    assert app.ui.applyButton.text == "Apply" and app.ui.progressBar.visible is False


# --------------------------------------------------------------------------- the Backend section's widgets


class FakeQtWidget:
    """A widget as PythonQt shows it: properties as attributes, ``connect(signal, slot)``; ``emit`` fires a slot."""

    def __init__(self, text: str = "", *args) -> None:
        self.text = text if isinstance(text, str) else ""
        self.enabled, self.collapsed, self.currentIndex, self.currentPath = True, False, 0, ""
        self.items: list[tuple[str, object]] = []
        self.slots: dict[str, object] = {}

    def addItem(self, text: str, data: object = None) -> None:
        self.items.append((text, data))

    def addRow(self, *widgets) -> None:
        pass

    def connect(self, signal: str, slot) -> None:
        self.slots[signal] = slot

    def blockSignals(self, blocked: bool) -> None:
        pass

    def emit(self, signal: str, *args) -> None:
        self.slots[signal](*args)


class FakeLineEdit(FakeQtWidget):
    Password = 2


class FakePathLineEdit(FakeQtWidget):
    Files = 1


@pytest.fixture
def section_module(panel, monkeypatch: pytest.MonkeyPatch):
    """``MedFuseLib/backend_section.py`` imported against the panel's stand-ins plus these widgets."""
    qt, ctk = sys.modules["qt"], sys.modules["ctk"]
    for name in ("QComboBox", "QPushButton", "QLabel", "QFormLayout"):
        monkeypatch.setattr(qt, name, FakeQtWidget, raising=False)
    monkeypatch.setattr(qt, "QLineEdit", FakeLineEdit, raising=False)
    monkeypatch.setattr(ctk, "ctkCollapsibleButton", FakeQtWidget, raising=False)
    monkeypatch.setattr(ctk, "ctkPathLineEdit", FakePathLineEdit, raising=False)
    path = base.MEDFUSE_LIB_DIR / "MedFuseLib" / "backend_section.py"
    spec = importlib.util.spec_from_file_location("medfuse_backend_section_under_test", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_backend_section_edits_the_one_setting_and_tests_the_connection(section_module, app: App, server):
    from MedFuseLib.backend_setting import BackendSetting

    section = section_module.BackendSection()
    assert section.widget.collapsed and section.widget.text == "Backend: this computer"
    assert section.tokenEdit.echoMode == FakeLineEdit.Password and not section.urlEdit.enabled

    section.kindCombo.currentIndex = 1
    section.kindCombo.emit("currentIndexChanged(int)", 1)
    assert section.widget.text == "Backend: a server (not set up yet)"
    assert section.messageLabel.text.startswith("Enter the MedFuse server's URL") and section.urlEdit.enabled

    section.urlEdit.text, section.tokenEdit.text = server.url + "/", "not-the-token"
    section.tokenEdit.emit("editingFinished()")
    assert BackendSetting.load().url == server.url + "/", "saved in Slicer's settings for every panel"
    assert section.widget.text == f"Backend: the server 127.0.0.1:{server.port}" and section.messageLabel.text == ""
    assert "not-the-token" not in str(app.settings.get("MedFuse/ServerUrl"))

    section.testButton.emit("clicked(bool)", False)
    assert "did not accept the token" in section.messageLabel.text
    section.tokenEdit.text = server.token
    section.testButton.emit("clicked(bool)", False)
    assert section.messageLabel.text.startswith(f"Connected to the server 127.0.0.1:{server.port} (MedFuse server ")

    other = section_module.BackendSection()  # another panel shows the same setting
    assert other.kindCombo.currentIndex == 1 and other.urlEdit.text == server.url + "/"

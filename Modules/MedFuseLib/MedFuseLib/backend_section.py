"""The "Backend" section at the bottom of every MedFuse panel: run jobs on this computer or on a server.

Every panel shows the same setting (:class:`MedFuseLib.backend_setting.BackendSetting`, kept in
Slicer's settings), so a change in one panel holds for all of them and for the Python console. The
section is collapsed; its title says where jobs run ("Backend: this computer"), so a radiologist sees
it without opening it. The token field hides what is typed. "Test connection" checks the URL, the
token and the server's API version and says the result in one sentence. Needs the Slicer
application (``qt``, ``ctk``).
"""

from __future__ import annotations

import ctk
import qt
from slicer.i18n import tr as _

from MedFuseLib.backend_setting import LOCAL, SERVER, BackendSetting, checkServer
from MedFuseLib.settings_store import SettingsStore

__all__ = ["BackendSection"]


class BackendSection:
    """The Backend section's widgets, bound to the Backend setting.

    Args:
        store: settings store; default Slicer's settings.
    """

    def __init__(self, store: SettingsStore | None = None) -> None:
        self.store = store
        self.widget = ctk.ctkCollapsibleButton()
        self.widget.collapsed = True
        form = qt.QFormLayout(self.widget)
        self.kindCombo = qt.QComboBox()
        self.kindCombo.addItem(_("This computer"), LOCAL)
        self.kindCombo.addItem(_("Server"), SERVER)
        self.kindCombo.toolTip = _("Where MedFuse jobs run, for every MedFuse panel.")
        self.urlEdit = qt.QLineEdit()
        self.urlEdit.placeholderText = "https://gpu-box:8443"
        self.urlEdit.toolTip = _("The MedFuse server's address (medfuse serve); https:// for another computer.")
        self.tokenEdit = qt.QLineEdit()
        self.tokenEdit.echoMode = qt.QLineEdit.Password
        self.tokenEdit.toolTip = _("The server's token: $MEDFUSE_HOME/server/token on the server.")
        self.caFileEdit = ctk.ctkPathLineEdit()
        self.caFileEdit.filters = ctk.ctkPathLineEdit.Files
        self.caFileEdit.nameFilters = [_("Certificates (*.pem *.crt)")]
        self.caFileEdit.toolTip = _(
            "Only for a server with its own (self-signed) certificate: that certificate's file."
        )
        self.testButton = qt.QPushButton(_("Test connection"))
        self.messageLabel = qt.QLabel()
        self.messageLabel.wordWrap = True
        form.addRow(_("Run jobs on:"), self.kindCombo)
        form.addRow(_("Server URL:"), self.urlEdit)
        form.addRow(_("Token:"), self.tokenEdit)
        form.addRow(_("Certificate:"), self.caFileEdit)
        form.addRow(self.testButton)
        form.addRow(self.messageLabel)
        self.kindCombo.connect("currentIndexChanged(int)", self._onEdited)
        self.urlEdit.connect("editingFinished()", self._onEdited)
        self.tokenEdit.connect("editingFinished()", self._onEdited)
        self.caFileEdit.connect("currentPathChanged(QString)", self._onEdited)
        self.testButton.connect("clicked(bool)", self._onTest)
        self.refresh()

    def refresh(self) -> None:
        """Show the saved setting (another panel or the console may have changed it)."""
        setting = BackendSetting.load(self.store)
        self.kindCombo.blockSignals(True)
        self.kindCombo.currentIndex = 1 if setting.isServer else 0
        self.kindCombo.blockSignals(False)
        self.urlEdit.text = setting.url
        self.tokenEdit.text = setting.token
        self.caFileEdit.blockSignals(True)
        self.caFileEdit.currentPath = setting.caFile
        self.caFileEdit.blockSignals(False)
        self._showSetting(setting)

    def _edited(self) -> BackendSetting:
        kind = SERVER if self.kindCombo.currentIndex == 1 else LOCAL
        return BackendSetting(
            kind, self.urlEdit.text.strip(), self.tokenEdit.text.strip(), self.caFileEdit.currentPath.strip()
        )

    def _onEdited(self, *args) -> None:
        setting = self._edited()
        setting.save(self.store)
        self._showSetting(setting)

    def _showSetting(self, setting: BackendSetting) -> None:
        serverFields = setting.isServer
        for field in (self.urlEdit, self.tokenEdit, self.caFileEdit, self.testButton):
            field.enabled = serverFields
        try:
            setting.check()
            where, problem = setting.describe(), ""
        except ValueError as error:
            where, problem = _("a server (not set up yet)"), str(error)
        self.widget.text = _("Backend: {where}").format(where=where)
        self.messageLabel.text = problem

    def _onTest(self, *args) -> None:
        setting = self._edited()
        try:
            info = checkServer(setting)
        except ValueError as error:
            self.messageLabel.text = str(error)
            return
        self.messageLabel.text = _("Connected to {where} (MedFuse server {version}).").format(
            where=setting.describe(), version=info.get("version", "?")
        )

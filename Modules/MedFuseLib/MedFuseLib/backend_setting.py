"""The Backend setting: where every MedFuse panel runs its jobs, on this computer or on a ``medfuse serve`` server.

One setting for all panels and for the Python console, kept in Slicer's settings (``qt.QSettings``:
the user's ``Slicer.ini``), never in a scene file; the token is left out of ``repr`` and of every
message. A :class:`MedFuseLib.task_logic.TaskLogic` without an explicit ``runner`` asks
:func:`backendRunner` for one: a :class:`~MedFuseLib.runner.SubprocessRunner` for "This computer", a
:class:`~MedFuseLib.remote_runner.RemoteRunner` for "Server", the latter only after the user agreed to
send image data there (:mod:`MedFuseLib.consent`). In the console::

    from MedFuseLib.backend_setting import useServer, useThisComputer
    useServer("https://gpu-box:8443", "TOKEN")   # then giveConsent(...) or press Apply in a panel once
    useThisComputer()

Needs no Qt (the store is injected or found by :func:`MedFuseLib.settings_store.defaultSettingsStore`).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from MedFuseLib.consent import ServerConsents, consentQuestion, declinedMessage, serverAddress, serverOrigin
from MedFuseLib.remote_runner import RemoteRunner
from MedFuseLib.runner import ProcessRunner, SubprocessRunner
from MedFuseLib.settings_store import SettingsStore, defaultSettingsStore
from SlicerMedFuse.facade import RemoteError, ServerClient, is_loopback

__all__ = [
    "LOCAL",
    "SERVER",
    "BackendSetting",
    "backendRunner",
    "checkServer",
    "prepareBackendStart",
    "useServer",
    "useThisComputer",
]

#: The backend runs as a child process on this computer (the default).
LOCAL = "local"
#: The backend runs on a ``medfuse serve`` server.
SERVER = "server"
KIND_KEY = "MedFuse/Backend"
URL_KEY = "MedFuse/ServerUrl"
TOKEN_KEY = "MedFuse/ServerToken"
CA_FILE_KEY = "MedFuse/ServerCaFile"
#: Seconds to wait for the server's answer when checking it before a job.
CHECK_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class BackendSetting:
    """Where jobs run.

    Args:
        kind: :data:`LOCAL` or :data:`SERVER`.
        url: the server's URL (``https://HOST:PORT``), for :data:`SERVER`.
        token: the server's token (``$MEDFUSE_HOME/server/token`` on the server); never shown.
        caFile: the server's own certificate (PEM) to trust, for a server whose certificate no
            authority this computer trusts signed; "" trusts the system's authorities only.
    """

    kind: str = LOCAL
    url: str = ""
    token: str = dataclasses.field(default="", repr=False)
    caFile: str = ""

    @property
    def isServer(self) -> bool:
        return self.kind == SERVER

    @classmethod
    def load(cls, store: SettingsStore | None = None) -> BackendSetting:
        """The setting saved in ``store`` (default Slicer's settings); "This computer" when none is."""
        store = store if store is not None else defaultSettingsStore()
        kind = str(store.value(KIND_KEY, LOCAL) or LOCAL)
        return cls(
            SERVER if kind == SERVER else LOCAL,
            str(store.value(URL_KEY, "") or ""),
            str(store.value(TOKEN_KEY, "") or ""),
            str(store.value(CA_FILE_KEY, "") or ""),
        )

    def save(self, store: SettingsStore | None = None) -> None:
        """Keep this setting in ``store`` (default Slicer's settings) for every panel and later sessions."""
        store = store if store is not None else defaultSettingsStore()
        store.setValue(KIND_KEY, self.kind)
        store.setValue(URL_KEY, self.url.strip())
        store.setValue(TOKEN_KEY, self.token.strip())
        store.setValue(CA_FILE_KEY, self.caFile.strip())

    def check(self) -> None:
        """ValueError (one sentence naming the fix) when a server setting cannot be used."""
        if not self.isServer:
            return
        if not self.url.strip():
            raise ValueError("Enter the MedFuse server's URL under Backend, e.g. https://gpu-box:8443.")
        origin = serverOrigin(self.url)
        host = urllib.parse.urlsplit(origin).hostname or ""
        if origin.startswith("http:") and not is_loopback(host):
            raise ValueError(
                f"The server {serverAddress(self.url)} is on another computer: use https:// so that the token "
                "and the images are encrypted on the way."
            )
        if not self.token.strip():
            raise ValueError(
                f"Enter the token of the server {serverAddress(self.url)} under Backend (it is in "
                "$MEDFUSE_HOME/server/token on the server)."
            )
        if self.caFile.strip() and not Path(self.caFile.strip()).is_file():
            raise ValueError(
                f"The certificate file {self.caFile.strip()} does not exist; choose the server's certificate "
                "(PEM) under Backend, or clear the field."
            )

    def client(self, timeout_s: float = 60.0) -> ServerClient:
        """A client for the server (after :meth:`check`)."""
        self.check()
        return ServerClient(self.url.strip(), self.token, timeout_s=timeout_s, cafile=self.caFile.strip() or None)

    def describe(self) -> str:
        """Where jobs run, in words: "this computer" or "the server HOST:PORT"."""
        return f"the server {serverAddress(self.url)}" if self.isServer else "this computer"


def useServer(url: str, token: str, store: SettingsStore | None = None, caFile: str = "") -> BackendSetting:
    """Run every panel's and the console's jobs on a server from now on; returns the saved setting.

    Args:
        url: the server's URL, e.g. ``https://gpu-box:8443``.
        token: the server's token.
        store: settings store; default Slicer's settings.
        caFile: the server's self-signed certificate (PEM) to trust, if it has one.

    Raises:
        ValueError: the URL, token or certificate file cannot be used (one sentence).
    """
    setting = BackendSetting(SERVER, url.strip(), token.strip(), caFile.strip())
    setting.check()
    setting.save(store)
    return setting


def useThisComputer(store: SettingsStore | None = None) -> BackendSetting:
    """Run jobs on this computer again (the server's URL and token are kept for later)."""
    setting = dataclasses.replace(BackendSetting.load(store), kind=LOCAL)
    setting.save(store)
    return setting


def backendRunner(store: SettingsStore | None = None) -> ProcessRunner:
    """The runner the Backend setting chooses (what a Logic uses when it is given none).

    Raises:
        ValueError: the server setting is incomplete; :class:`MedFuseLib.consent.ConsentRequired`: the
            user has not agreed to send image data to the server (each one sentence naming the fix).
    """
    store = store if store is not None else defaultSettingsStore()
    setting = BackendSetting.load(store)
    if not setting.isServer:
        return SubprocessRunner()
    client = setting.client()
    ServerConsents(store).require(setting.url)
    return RemoteRunner(client)


def checkServer(setting: BackendSetting, timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, Any]:
    """The server's info after checking that it answers, takes the token and speaks this API's major version.

    Raises:
        ValueError: one sentence: refused or unreachable, TLS failure, wrong token, other API version, timeout.
    """
    try:
        return setting.client(timeout_s).check_version()
    except RemoteError as error:
        if error.status == 401:
            raise ValueError(
                f"The server {serverAddress(setting.url)} did not accept the token; copy it from "
                "$MEDFUSE_HOME/server/token on the server into the Token field under Backend."
            ) from None
        if "CERTIFICATE_VERIFY_FAILED" in error.message:  # the client names the TLS failure in its sentence
            raise ValueError(
                f"The server {serverAddress(setting.url)} presented a certificate this computer does not trust; "
                "choose the server's certificate (PEM) under Backend, or give the server one from a trusted authority."
            ) from None
        raise ValueError(error.message) from None


def prepareBackendStart(ask: Callable[[str], bool], store: SettingsStore | None = None) -> str:
    """What a panel does before it starts a job: consent for a server, then a check that the server answers.

    Args:
        ask: shows the consent question (the argument) and returns whether the user agreed; called
            only the first time for each server.
        store: settings store; default Slicer's settings.

    Returns:
        "" when the job may start; else the one sentence to show (nothing was sent).
    """
    store = store if store is not None else defaultSettingsStore()
    setting = BackendSetting.load(store)
    if not setting.isServer:
        return ""
    try:
        setting.check()
        consents = ServerConsents(store)
        if not consents.given(setting.url):
            if not ask(consentQuestion(setting.url)):
                return declinedMessage(setting.url)
            consents.give(setting.url)
        checkServer(setting)
    except ValueError as error:
        return str(error)
    return ""

"""The one-time consent before image data leaves this computer for a MedFuse server.

A job on a server uploads the input volumes (voxels and geometry). Before the first upload to a
server the panel asks the user, naming the server's host and port; the answer "yes" is remembered
per server (scheme, host and port), in the same settings store as the Backend setting. A Logic
refuses to send anything to a server without that record (:class:`ConsentRequired`); in Slicer's
Python console the record is made with :func:`giveConsent`::

    from MedFuseLib.consent import giveConsent
    giveConsent("https://gpu-box:8443")

Needs no Qt: the store is ``qt.QSettings`` inside Slicer, any object with ``value``/``setValue`` elsewhere.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from MedFuseLib.settings_store import defaultSettingsStore

__all__ = [
    "ConsentRequired",
    "ServerConsents",
    "consentQuestion",
    "declinedMessage",
    "giveConsent",
    "withdrawConsent",
    "serverAddress",
    "serverOrigin",
]

#: Settings key of the servers the user agreed to send image data to (a JSON list of origins).
CONSENTS_KEY = "MedFuse/ServerConsents"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ConsentRequired(ValueError):
    """A job would send image data to a server the user has not agreed to; the message says how to agree."""


def _parts(url: str) -> tuple[str, str, int]:
    parsed = urllib.parse.urlsplit(url.strip())
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port
    except ValueError:
        port = None
        scheme = ""
    if scheme not in _DEFAULT_PORTS or not parsed.hostname:
        raise ValueError(
            f"'{url}' is not a server URL; enter it as https://HOST:PORT (http:// only for this computer)."
        )
    return scheme, parsed.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def serverOrigin(url: str) -> str:
    """The server a URL names, written one way: ``HTTPS://Box:443/`` -> ``https://box:443``.

    Raises:
        ValueError: not an http(s) URL with a host (one sentence).
    """
    scheme, host, port = _parts(url)
    return f"{scheme}://{host}:{port}"


def serverAddress(url: str) -> str:
    """``host:port`` of the server a URL names, as the consent question shows it."""
    _, host, port = _parts(url)
    return f"{host}:{port}"


def consentQuestion(url: str) -> str:
    """The consent dialog's text: which server gets what."""
    return (
        f"MedFuse will send the input volumes of this job (voxels and geometry, no patient names or DICOM tags) "
        f"to the server {serverAddress(url)} and receive the results from it. "
        "Send image data to this server now and for later jobs?"
    )


def declinedMessage(url: str) -> str:
    """The status sentence after the user declined: nothing was sent, and how to proceed."""
    return (
        f"Nothing was sent to {serverAddress(url)}; press Apply again to be asked again, "
        "or choose 'This computer' under Backend."
    )


class ServerConsents:
    """The servers the user agreed to send image data to, kept in a settings store.

    Args:
        store: ``qt.QSettings`` or any object with ``value(key, default)`` and ``setValue(key, value)``.
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def origins(self) -> list[str]:
        """Every server (``scheme://host:port``) with a recorded consent, in the order given."""
        text = self.store.value(CONSENTS_KEY, "[]")
        try:
            origins = json.loads(text) if isinstance(text, str) else []
        except ValueError:
            origins = []  # an unreadable record grants nothing: the user is asked again
        return [origin for origin in origins if isinstance(origin, str)]

    def given(self, url: str) -> bool:
        """Whether the user agreed to send image data to the server ``url`` names."""
        return serverOrigin(url) in self.origins()

    def give(self, url: str) -> None:
        """Record the user's consent for the server ``url`` names (its path does not matter)."""
        origin = serverOrigin(url)
        origins = self.origins()
        if origin not in origins:
            self.store.setValue(CONSENTS_KEY, json.dumps([*origins, origin]))

    def withdraw(self, url: str) -> None:
        """Forget the consent for the server ``url`` names: the next job asks again."""
        origin = serverOrigin(url)
        self.store.setValue(CONSENTS_KEY, json.dumps([o for o in self.origins() if o != origin]))

    def require(self, url: str) -> None:
        """Raise :class:`ConsentRequired` unless the user agreed to send image data to this server."""
        if not self.given(url):
            raise ConsentRequired(
                f"Image data is sent to the server {serverAddress(url)} only with your consent; press Apply in a "
                f"MedFuse panel to be asked, or run MedFuseLib.consent.giveConsent('{serverOrigin(url)}') in the "
                "Python console."
            )


def giveConsent(url: str, store: Any = None) -> None:
    """Record consent for the server ``url`` names in Slicer's settings (or ``store``), for console users.

    Args:
        url: the server's URL, e.g. ``https://gpu-box:8443``.
        store: settings store; default :func:`MedFuseLib.settings_store.defaultSettingsStore`.
    """
    ServerConsents(store if store is not None else defaultSettingsStore()).give(url)


def withdrawConsent(url: str, store: Any = None) -> None:
    """Forget the consent for the server ``url`` names (the next job there asks again), for console users."""
    ServerConsents(store if store is not None else defaultSettingsStore()).withdraw(url)

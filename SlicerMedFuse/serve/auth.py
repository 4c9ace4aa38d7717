"""The server's token and its bind policy: who may talk to it, and on which addresses it may listen."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.serve_client import is_loopback

__all__ = ["TOKEN_FILE_NAME", "check_bind_address", "load_or_create_token", "token_matches"]

TOKEN_FILE_NAME = "token"
_TOKEN_BYTES = 32  # 256 bits of randomness, URL-safe text of 43 characters


def load_or_create_token(home: Path) -> str:
    """The token in ``<home>/token``, created (random, file mode 0600) at first start.

    Args:
        home: the server folder (``$MEDFUSE_HOME/server``).

    Returns:
        The token text clients send as ``Authorization: Bearer TOKEN``.

    Raises:
        UsageError: the token file is readable by others or empty.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = home / TOKEN_FILE_NAME
    try:
        # O_EXCL: two servers starting at once never overwrite each other's token.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def token_matches(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token, compared in constant time."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())


def check_bind_address(host: str, certfile: str | None, keyfile: str | None, insecure_behind_proxy: bool) -> None:
    """Refuse to listen on a non-loopback address without TLS or the explicit reverse-proxy flag.

    Raises:
        UsageError: one sentence naming the options that fix it.
    """
    if bool(certfile) != bool(keyfile):
        raise UsageError("Give both --ssl-certfile and --ssl-keyfile, or neither.")
    if is_loopback(host) or certfile or insecure_behind_proxy:
        return
    raise UsageError(
        f"Listening on {host} would send images and the token unencrypted; give --ssl-certfile and --ssl-keyfile, "
        "or --insecure-behind-proxy when a TLS reverse proxy on this machine is the only way in."
    )


def _read_token(path: Path) -> str:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise UsageError(f"The token file {path} is readable by other users; run 'chmod 600 {path}'.")
    token = path.read_text(encoding="ascii").strip()
    if not token:
        raise UsageError(f"The token file {path} is empty; delete it and a new token is made at the next start.")
    return token

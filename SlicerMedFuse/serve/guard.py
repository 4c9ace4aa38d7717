"""ASGI middleware in front of every route: the token, the client's API version, and the upload limit by header.

It runs before routing, so an unauthenticated caller learns nothing, not even which paths exist.
"""

from __future__ import annotations

import json
from typing import Any

from SlicerMedFuse.serve.auth import token_matches
from SlicerMedFuse.serve.uploads import too_large_message
from SlicerMedFuse.serve_client import API_VERSION, API_VERSION_HEADER, version_mismatch

__all__ = ["Guard"]


class Guard:
    """Answer 401 without the token, 409 for a client of another major API version, 413 for a declared oversize body.

    Args:
        app: the ASGI application behind it.
        token: the server's token.
        max_body_bytes: largest request body (the route also counts the bytes it really receives).
    """

    def __init__(self, app: Any, token: str, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if not token_matches(self.token, headers.get("authorization")):
            message = "This server needs its token: send 'Authorization: Bearer TOKEN' (the token is in $MEDFUSE_HOME/server/token on the server)."
            await _answer(send, 401, message, [(b"www-authenticate", b"Bearer")])
            return
        client_version = headers.get(API_VERSION_HEADER.lower())
        if client_version and client_version.split(".")[0] != API_VERSION.split(".")[0]:
            await _answer(send, 409, version_mismatch(client_version, API_VERSION))
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, too_large_message(self.max_body_bytes))
            return
        await self.app(scope, receive, send)


async def _answer(send: Any, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

"""``medfuse serve``: the task contract over HTTP for a GPU box (FastAPI + uvicorn).

Every request carries the server's token; each job runs the task in a child process
(``python -m SlicerMedFuse run ... --progress json``) so that cancel ends it and a crash cannot take
the server down; jobs live on disk under ``$MEDFUSE_HOME/server/jobs/<id>/``. The wire protocol
(endpoints, archive layout, version handshake) is in docs/server.md; the torch-free client is
:mod:`SlicerMedFuse.serve_client`. This package imports fastapi and uvicorn (the ``serve`` extra);
nothing else in the backend imports it.
"""

from __future__ import annotations

from SlicerMedFuse.serve.app import create_app
from SlicerMedFuse.serve.config import ServerConfig

__all__ = ["ServerConfig", "create_app"]

"""The FastAPI application: version handshake, tasks, jobs (submit, status, events, cancel, outputs, report).

Routes (all under ``/v1``, all need the token; see docs/server.md):

=======  ============================  ==========================================================
GET      /v1/info                      server and API version, limits
GET      /v1/tasks                     every TaskSpec as JSON (``medfuse tasks --json``)
GET      /v1/tasks/{name}              one TaskSpec
POST     /v1/jobs                      submit: tar archive (uploads) or JSON (server-side paths)
GET      /v1/jobs                      every job's status
GET      /v1/jobs/{id}                 one job's status
GET      /v1/jobs/{id}/events          progress as Server-Sent Events (the ``--progress json`` events)
POST     /v1/jobs/{id}/cancel          cancel
GET      /v1/jobs/{id}/outputs/{role}  an output file
GET      /v1/jobs/{id}/report          the job report (JSON)
=======  ============================  ==========================================================
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import SlicerMedFuse
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.serve.auth import load_or_create_token
from SlicerMedFuse.serve.config import ServerConfig
from SlicerMedFuse.serve.events import job_event_stream
from SlicerMedFuse.serve.guard import Guard
from SlicerMedFuse.serve.job_request import RequestRefused, checked_request, parse_request_json
from SlicerMedFuse.serve.jobs import JobNotFound, JobStore
from SlicerMedFuse.serve.runner import JobRunner
from SlicerMedFuse.serve.uploads import receive_body, unpack_job_archive
from SlicerMedFuse.serve_client import API_VERSION
from SlicerMedFuse.specs import all_specs, task_spec

__all__ = ["create_app"]

_ARCHIVE_TYPES = ("application/x-tar", "application/tar")
_ARCHIVE = "upload.tar"
_JSON_BODY = "request.body"


def create_app(config: ServerConfig, token: str | None = None) -> Guard:
    """The server as an ASGI application (for uvicorn).

    Args:
        config: server settings.
        token: the token to require; default: the one in ``config.home`` (created at first start).

    Returns:
        The application, wrapped in the token / version / size guard.
    """
    store = JobStore(config.jobs_dir)
    runner = JobRunner(store, config)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner.start(store.recover())
        yield
        runner.stop()

    app = FastAPI(
        title="SlicerMedFuse", version=SlicerMedFuse.__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    _add_error_handlers(app)

    @app.get("/v1/info")
    def info() -> dict[str, Any]:
        return {
            "server": "SlicerMedFuse",
            "version": SlicerMedFuse.__version__,
            "api_version": API_VERSION,
            "max_upload_bytes": config.max_upload_bytes,
            "max_concurrent_jobs": config.max_concurrent_jobs,
            "allowed_roots": [str(root) for root in config.allowed_roots],
        }

    @app.get("/v1/tasks")
    def tasks() -> list[dict[str, Any]]:
        return [spec.to_dict() for spec in all_specs()]

    @app.get("/v1/tasks/{name}")
    def task(name: str) -> dict[str, Any]:
        return task_spec(name).to_dict()

    @app.post("/v1/jobs", status_code=202)
    async def submit(request: Request) -> Any:
        staging = store.new_staging_folder()
        try:
            kind = await _receive(request, staging, config.max_upload_bytes)
            # Unpacking copies up to the upload limit: in a worker thread, so other requests are served meanwhile.
            status = await run_in_threadpool(_admit, store, staging, kind, config)
        except ClientDisconnect:
            shutil.rmtree(staging, ignore_errors=True)  # nothing of a half-sent job stays behind
            return JSONResponse({"detail": "The client went away before the upload ended."}, status_code=400)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        runner.submit(status["id"])
        return status

    @app.get("/v1/jobs")
    def jobs() -> list[dict[str, Any]]:
        return store.all_statuses()

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        return store.status(job_id)

    @app.get("/v1/jobs/{job_id}/events")
    def events(job_id: str, request: Request) -> StreamingResponse:
        store.folder(job_id)  # 404 now, not inside the stream
        after = request.headers.get("last-event-id", "0")
        stream = job_event_stream(store, job_id, int(after) if after.isdigit() else 0)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/v1/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        return runner.cancel(job_id)

    @app.get("/v1/jobs/{job_id}/outputs/{role}")
    def output(job_id: str, role: str) -> FileResponse:
        status = store.status(job_id)
        names = store.request(job_id)["outputs"]
        if status["state"] != "succeeded" or role not in names:
            raise RequestRefused(404, _no_output(status, role, names))
        return FileResponse(store.folder(job_id) / "outputs" / names[role], filename=f"{job_id}-{names[role]}")

    @app.get("/v1/jobs/{job_id}/report")
    def report(job_id: str) -> FileResponse:
        path = store.folder(job_id) / "report.json"
        if not path.is_file():
            raise RequestRefused(
                404, f"Job {job_id} has no report (it is {store.status(job_id)['state']}); reports come with success."
            )
        return FileResponse(path, media_type="application/json")

    return Guard(app, token or load_or_create_token(config.home), config.max_upload_bytes)


async def _receive(request: Request, staging: Path, limit: int) -> str:
    """Write a submission's body into ``staging``; returns its kind, ``"archive"`` or ``"json"``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in _ARCHIVE_TYPES:
        await receive_body(request.stream(), staging / _ARCHIVE, limit)
        return "archive"
    if kind == "application/json":
        await receive_body(request.stream(), staging / _JSON_BODY, limit)
        return "json"
    raise RequestRefused(
        415, "Submit a job as application/x-tar (uploads) or application/json (server-side paths only)."
    )


def _admit(store: JobStore, staging: Path, kind: str, config: ServerConfig) -> dict[str, Any]:
    """Unpack and check a received submission and make it a queued job; returns its status."""
    if kind == "archive":
        text, uploads = unpack_job_archive(staging / _ARCHIVE, staging)
        (staging / _ARCHIVE).unlink()
    else:
        text, uploads = (staging / _JSON_BODY).read_bytes(), {}
        (staging / _JSON_BODY).unlink()
    relative = {role: path.relative_to(staging) for role, path in uploads.items()}  # the folder is renamed next
    job_request = checked_request(parse_request_json(text), relative, config.allowed_roots)
    return store.create(staging, job_request)


def _no_output(status: dict[str, Any], role: str, names: dict[str, str]) -> str:
    if role not in names:
        return f"Job {status['id']} has no output '{role}'; it has {', '.join(sorted(names))}."
    return f"Job {status['id']} is {status['state']}; outputs exist only once it has succeeded."


def _add_error_handlers(app: FastAPI) -> None:
    """Every refusal is ``{"detail": one sentence}`` with its status; never a traceback."""

    def sentence(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RequestRefused)
    async def refused(_request: Request, error: RequestRefused) -> JSONResponse:
        return sentence(error.status, error.message)

    @app.exception_handler(JobNotFound)
    async def no_job(_request: Request, error: JobNotFound) -> JSONResponse:
        return sentence(404, f"There is no job {error.args[0]!r} on this server; GET /v1/jobs lists them.")

    @app.exception_handler(UsageError)
    async def usage(_request: Request, error: UsageError) -> JSONResponse:
        return sentence(404, error.message)  # an unknown task name in a URL

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return sentence(422, f"The request is malformed at {where or 'its body'}: {first.get('msg', 'invalid')}.")

    @app.exception_handler(StarletteHTTPException)
    async def http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return sentence(error.status_code, str(error.detail))

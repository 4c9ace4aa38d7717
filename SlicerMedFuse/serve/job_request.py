"""A job request: what a client may ask for, checked against the task's declaration before anything runs.

The client sends (as ``request.json`` inside the upload archive, or as the JSON body)::

    {"task": "superres",
     "inputs": {"volume": "/data/case1/ct.nrrd"},   # server-side paths under the allowed roots (optional)
     "params": {"method": "linear"},                # names and values as in the TaskSpec (optional)
     "model": "hemorrhage-ct",                      # a model id in the server's store (optional)
     "outputs": ["volume"]}                         # output roles (optional; default: the primary output),
                                                    # or {"volume": ".nrrd"} to choose each file format

Uploaded inputs arrive as archive members ``inputs/<role>.nrrd`` (or ``.nii``, ``.nii.gz``, ``.mha``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.serve.paths import PathRefused, resolve_allowed_path
from SlicerMedFuse.serve_client import TRANSFORM_FORMATS, VOLUME_FORMATS
from SlicerMedFuse.specs import task_spec

__all__ = ["RequestRefused", "checked_request", "parse_request_json"]

#: A model id, optionally pinned to a version (``id@version``, as ``medfuse run --model`` takes it).
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(@[A-Za-z0-9][A-Za-z0-9.+-]{0,63})?$")
_KEYS = {"task", "inputs", "params", "model", "outputs"}
_DEFAULT_FORMAT = {False: ".nii.gz", True: ".h5"}  # by "is a transform"


class RequestRefused(ValueError):
    """A request the server will not run; ``status`` is the HTTP status, the message one sentence naming the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_request_json(text: bytes) -> dict[str, Any]:
    """The request object from JSON text.

    Raises:
        RequestRefused: 400 for text that is not a JSON object.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        where = f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        raise RequestRefused(400, f"The job request is not valid JSON{where}; send a JSON object.") from None
    if not isinstance(data, dict):
        raise RequestRefused(400, "The job request must be a JSON object with at least a 'task'.")
    return data


def checked_request(data: Mapping[str, Any], uploads: Mapping[str, Path], roots: Sequence[Path]) -> dict[str, Any]:
    """Check a request against its task's spec and the server's roots; returns what the job runs.

    Args:
        data: the parsed request.
        uploads: input role -> uploaded file, relative to the job folder.
        roots: the server's allowed roots for server-side paths.

    Returns:
        ``{"task", "inputs": role -> path, "params": name -> text, "model", "outputs": role -> file name}``.

    Raises:
        RequestRefused: 422 naming the wrong field (unknown task, role, parameter or value), 403 for a
            server-side path outside the roots.
    """
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise RequestRefused(422, f"Unknown request fields {unknown}; a request has {sorted(_KEYS)}.")
    if not isinstance(data.get("task"), str):
        raise RequestRefused(422, "The request needs 'task', a task name (GET /v1/tasks lists them).")
    try:
        spec = task_spec(data["task"])
        inputs = _inputs(data.get("inputs") or {}, uploads, roots)
        spec.check_roles(list(inputs))
        params = _params(spec, data.get("params") or {}, roots)
        outputs = _outputs(spec, data.get("outputs"))
    except UsageError as error:
        raise RequestRefused(422, error.message) from None
    model = data.get("model")
    if model is not None and not (isinstance(model, str) and _MODEL_ID.match(model)):
        raise RequestRefused(
            422,
            f"'model' must be a model id from the server's store (letters, digits, . _ -, optionally @version); got {model!r}.",
        )
    return {"task": spec.name, "inputs": inputs, "params": params, "model": model, "outputs": outputs}


def _inputs(named: Any, uploads: Mapping[str, Path], roots: Sequence[Path]) -> dict[str, str]:
    if not isinstance(named, dict) or not all(isinstance(v, str) for v in named.values()):
        raise UsageError("'inputs' must map input roles to server-side paths (text).")
    both = sorted(set(named) & set(uploads))
    if both:
        raise UsageError(f"Input {both[0]} is both uploaded and named as a server-side path; give it once.")
    inputs = {role: str(path) for role, path in uploads.items()}
    for role, text in named.items():
        try:
            inputs[role] = resolve_allowed_path(text, roots)
        except PathRefused as refused:
            raise RequestRefused(403, str(refused)) from None
    return inputs


def _params(spec: Any, given: Any, roots: Sequence[Path]) -> dict[str, str]:
    """Parameter name -> ``--param`` text; a parameter naming a file is held to the server's roots.

    A file the task would write besides its outputs (``transform_file``) is refused: it would land
    anywhere on the server; the task's outputs come back with the job instead. A file it reads
    (``initial_transform``) must lie under an allowed root, like a server-side input.
    """
    if not isinstance(given, dict):
        raise UsageError("'params' must map parameter names to values.")
    values = spec.resolve_parameters(given)  # raises UsageError naming the parameter and the allowed values
    texts = {name: _as_text(values[name]) for name in given}
    for name in given:
        use = spec.parameter(name).file
        if not use or values[name] is None:
            continue
        if use == "write":
            raise UsageError(
                f"Parameter '{name}' would write a file on the server; request the task's outputs instead "
                "(they come back with the job)."
            )
        try:
            texts[name] = resolve_allowed_path(values[name], roots)
        except PathRefused as refused:
            raise RequestRefused(403, str(refused)) from None
    return texts


def _as_text(value: Any) -> str:
    """A parameter value as ``--param`` text (the CLI parses it back with the same spec)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _outputs(spec: Any, requested: Any) -> dict[str, str]:
    """Output role -> file name in the job's ``outputs/``: from a list of roles, or roles with their file format."""
    if requested is None:
        requested = [spec.primary_output.role]
    if isinstance(requested, list) and all(isinstance(role, str) for role in requested):
        requested = {role: _DEFAULT_FORMAT[spec.output(role).kind == "transform"] for role in requested}
    if not isinstance(requested, dict) or not requested or not all(isinstance(f, str) for f in requested.values()):
        raise UsageError("'outputs' must be a non-empty list of output roles, or a map of output role to file format.")
    names = {}
    for role, extension in requested.items():
        allowed = TRANSFORM_FORMATS if spec.output(role).kind == "transform" else VOLUME_FORMATS
        if extension not in allowed:
            raise UsageError(f"Output '{role}' can be written as {', '.join(allowed)}; got {extension!r}.")
        names[role] = role + extension
    return names

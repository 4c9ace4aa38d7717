"""A client for ``medfuse serve``, using only the standard library (it runs in Slicer's Python as shipped).

Typical use::

    client = ServerClient("https://gpu-box:8443", token)
    client.check_version()
    job = client.submit("superres", uploads={"volume": "thick.nrrd"}, params={"method": "linear"})
    for event in client.events(job["id"]):      # the same events as `medfuse run --progress json`
        print(event)
    client.download(job["id"], "volume", "fine.nii.gz")

Uploads are NRRD / NIfTI / MHA files: voxels and geometry. With SimpleITK at hand (Slicer has it) each
is re-written without its metadata dictionary first, so no DICOM-derived field leaves the machine;
DICOM files are refused. The protocol (routes, archive layout, version handshake) is in docs/server.md.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import ssl
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from SlicerMedFuse.errors import MedFuseError

__all__ = [
    "API_VERSION",
    "API_VERSION_HEADER",
    "TRANSFORM_FORMATS",
    "VOLUME_FORMATS",
    "RemoteError",
    "ServerClient",
    "is_loopback",
    "version_mismatch",
]

#: Version of the HTTP protocol. A different MAJOR number means client and server cannot work together.
API_VERSION = "1.0"
#: Header in which a client names the API version it speaks.
API_VERSION_HEADER = "X-MedFuse-API-Version"

#: Volume formats of uploads and image outputs: voxels and geometry, no DICOM tags (``.nii.gz`` before ``.nii``).
VOLUME_FORMATS = (".nii.gz", ".nii", ".nrrd", ".mha")
#: Formats of transform outputs.
TRANSFORM_FORMATS = (".h5", ".hdf5")
_CHUNK = 1 << 20


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def version_mismatch(client_version: str, server_version: str) -> str:
    """The sentence for a client and server of different major API versions."""
    return (
        f"This client speaks MedFuse server API {client_version} but the server speaks {server_version}; "
        "update the older of the two so that their major versions match."
    )


class RemoteError(MedFuseError):
    """The server refused a request or could not be reached; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ServerClient:
    """Talks to one ``medfuse serve``.

    Args:
        url: the server's base URL, e.g. ``https://gpu-box:8443``.
        token: the server's token (``$MEDFUSE_HOME/server/token`` on the server).
        timeout_s: seconds to wait for an answer to one request (the event stream waits longer).
        cafile: a CA bundle or self-signed certificate to trust for ``https`` (default: the system's).
    """

    def __init__(self, url: str, token: str, timeout_s: float = 60.0, cafile: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.timeout_s = timeout_s
        self._tls = ssl.create_default_context(cafile=cafile) if self.url.startswith("https:") else None

    # -- protocol ----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Server version, API version and limits (``GET /v1/info``)."""
        return self._json("GET", "/v1/info")

    def check_version(self) -> dict[str, Any]:
        """The server's info, after checking that it speaks this client's major API version.

        Raises:
            RemoteError: one sentence naming both versions.
        """
        info = self.info()
        if str(info.get("api_version", "")).split(".")[0] != API_VERSION.split(".")[0]:
            raise RemoteError(version_mismatch(API_VERSION, str(info.get("api_version"))), 409)
        return info

    def tasks(self) -> list[dict[str, Any]]:
        """Every task's declaration (TaskSpec as JSON)."""
        return self._json("GET", "/v1/tasks")

    def submit(
        self,
        task: str,
        uploads: Mapping[str, str | os.PathLike[str]] | None = None,
        server_inputs: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        model: str | None = None,
        outputs: Sequence[str] | Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Submit a job; returns its status (``id``, ``state`` "queued", ...).

        Args:
            task: task name.
            uploads: input role -> local NRRD / NIfTI / MHA file to send.
            server_inputs: input role -> path on the server, under its allowed roots.
            params: parameter values by name.
            model: model id in the server's store (default: the task's own).
            outputs: output roles to produce (default: the primary output), or role -> file format
                (``.nii.gz``, ``.nii``, ``.nrrd``, ``.mha``; ``.h5`` for transforms; default ``.nii.gz``).
        """
        request = {"task": task, "inputs": dict(server_inputs or {}), "params": dict(params or {})}
        if model is not None:
            request["model"] = model
        if outputs is not None:
            request["outputs"] = dict(outputs) if isinstance(outputs, Mapping) else list(outputs)
        if not uploads:
            return self._json("POST", "/v1/jobs", json.dumps(request).encode(), "application/json")
        with tempfile.TemporaryDirectory(prefix="medfuse-upload-") as scratch:
            archive = Path(scratch) / "job.tar"
            _write_archive(archive, request, uploads, Path(scratch))
            with open(archive, "rb") as body:
                return self._json("POST", "/v1/jobs", body, "application/x-tar", archive.stat().st_size)

    def status(self, job_id: str) -> dict[str, Any]:
        """A job's status."""
        return self._json("GET", f"/v1/jobs/{job_id}")

    def jobs(self) -> list[dict[str, Any]]:
        """Every job's status, oldest first."""
        return self._json("GET", "/v1/jobs")

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job (a finished one stays as it is); returns its status."""
        return self._json("POST", f"/v1/jobs/{job_id}/cancel", b"", "application/json")

    def events(self, job_id: str, timeout_s: float = 3600.0) -> Iterator[dict[str, Any]]:
        """The job's progress events as they happen, until its last one (``result`` or ``error``).

        Args:
            job_id: the job.
            timeout_s: longest silence on the stream, in seconds (the server sends keep-alives every 15 s).
        """
        with self._open("GET", f"/v1/jobs/{job_id}/events", timeout_s=timeout_s) as response:
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    yield json.loads(line[5:])

    def wait(self, job_id: str, timeout_s: float = 3600.0) -> dict[str, Any]:
        """Follow a job's events to its end; returns its final status."""
        for _ in self.events(job_id, timeout_s):
            pass
        return self.status(job_id)

    def report(self, job_id: str) -> dict[str, Any]:
        """The report of a job that succeeded."""
        return self._json("GET", f"/v1/jobs/{job_id}/report")

    def download(self, job_id: str, role: str, path: str | os.PathLike[str]) -> Path:
        """Save output ``role`` of a succeeded job to ``path`` (complete or not at all); returns the path."""
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with self._open("GET", f"/v1/jobs/{job_id}/outputs/{role}") as response, open(partial, "wb") as handle:
                while chunk := response.read(_CHUNK):
                    handle.write(chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    # -- transport ---------------------------------------------------------------------------

    def _json(
        self, method: str, route: str, body: Any = None, content_type: str = "", length: int | None = None
    ) -> Any:
        with self._open(method, route, body, content_type, length) as response:
            return json.loads(response.read())

    def _open(
        self,
        method: str,
        route: str,
        body: Any = None,
        content_type: str = "",
        length: int | None = None,
        timeout_s: float | None = None,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", API_VERSION_HEADER: API_VERSION}
        if content_type:
            headers["Content-Type"] = content_type
        if length is not None:
            headers["Content-Length"] = str(length)
        request = urllib.request.Request(self.url + route, data=body, headers=headers, method=method)
        try:
            return urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s, context=self._tls)
        except urllib.error.HTTPError as error:
            raise RemoteError(_detail(error), error.code) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RemoteError(
                f"Cannot reach the MedFuse server at {self.url} ({reason}); check the URL and that the server runs."
            ) from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["detail"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"The MedFuse server answered {error.code} {error.reason}."


def _write_archive(
    archive: Path, request: dict[str, Any], uploads: Mapping[str, str | os.PathLike[str]], scratch: Path
) -> None:
    """A plain tar of ``request.json`` and ``inputs/<role><ext>`` (the layout the server unpacks)."""
    with tarfile.open(archive, "w") as bundle:
        text = json.dumps(request).encode()
        member = tarfile.TarInfo("request.json")
        member.size = len(text)
        bundle.addfile(member, io.BytesIO(text))
        for role, path in uploads.items():
            source = Path(path)
            extension = next((e for e in VOLUME_FORMATS if source.name.lower().endswith(e)), None)
            if extension is None or not source.is_file():
                raise RemoteError(
                    f"Upload {role}={source} must be an existing {', '.join(VOLUME_FORMATS)} file; export the volume as NRRD first."
                )
            plain = _without_metadata(source, scratch / f"{role}.nrrd")
            if plain is not None:
                source, extension = plain, ".nrrd"
            bundle.add(str(source), arcname=f"inputs/{role}{extension}", recursive=False)


def _without_metadata(source: Path, target: Path) -> Path | None:
    """``source`` re-written as NRRD with voxels and geometry only, or None where SimpleITK is missing."""
    try:
        import SimpleITK as sitk
    except ImportError:
        return None
    image = sitk.ReadImage(str(source))
    for key in image.GetMetaDataKeys():
        image.EraseMetaData(key)
    sitk.WriteImage(image, str(target), True)
    return target

"""Receiving a job upload: the request body streamed to disk under a size limit, then unpacked safely.

The body of ``POST /v1/jobs`` with ``Content-Type: application/x-tar`` is a plain (uncompressed) tar
archive holding ``request.json`` and one ``inputs/<role><ext>`` per uploaded volume. Tar keeps the
whole job one request, needs only the standard library on both ends (Slicer's Python included), and
is unpacked here member by member, never with ``extractall``: only regular files with the expected
names are copied, so an archive cannot write outside the job folder.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

from SlicerMedFuse.serve.job_request import RequestRefused
from SlicerMedFuse.serve_client import VOLUME_FORMATS

__all__ = ["receive_body", "too_large_message", "unpack_job_archive"]

_FORMAT_PATTERN = "|".join(re.escape(extension) for extension in VOLUME_FORMATS)
_INPUT_MEMBER = re.compile(rf"^inputs/([A-Za-z0-9_-]{{1,64}})({_FORMAT_PATTERN})$")
_DICOM_MAGIC_OFFSET = 128


async def receive_body(chunks: AsyncIterator[bytes], destination: Path, limit: int) -> int:
    """Write a request body to ``destination``, refusing it as soon as it passes ``limit`` bytes.

    Args:
        chunks: the body as it arrives (Starlette's ``request.stream()``).
        destination: file to write.
        limit: largest accepted size in bytes.

    Returns:
        The body's size in bytes.

    Raises:
        RequestRefused: 413 past the limit (the caller deletes what was written).
        starlette.requests.ClientDisconnect: the client went away mid-upload.
    """
    size = 0
    with open(destination, "wb") as handle:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise RequestRefused(413, too_large_message(limit))
            handle.write(chunk)
    return size


def too_large_message(limit: int) -> str:
    """The sentence of a 413 answer for a server whose limit is ``limit`` bytes."""
    return f"The upload is larger than this server's limit of {limit / 2**20:.0f} MiB; crop or downsample the volume, or ask the operator to raise max_upload_mb."


def unpack_job_archive(archive: Path, folder: Path) -> tuple[bytes, dict[str, Path]]:
    """Read ``request.json`` and the uploaded volumes out of a job archive into ``folder/inputs``.

    Args:
        archive: the received tar file.
        folder: the job's staging folder.

    Returns:
        The request JSON text and input role -> unpacked file.

    Raises:
        RequestRefused: 400 for a broken archive, a member with another name or type, a volume
            that is DICOM, or a missing ``request.json``.
    """
    request: bytes | None = None
    uploads: dict[str, Path] = {}
    (folder / "inputs").mkdir()
    try:
        with tarfile.open(archive, "r:") as bundle:
            for member in bundle:
                request = _take_member(bundle, member, folder, uploads, request)
    except tarfile.TarError:
        raise RequestRefused(
            400, "The upload is not a readable tar archive; send request.json and inputs/ROLE.nrrd in a plain tar."
        ) from None
    if request is None:
        raise RequestRefused(400, "The upload archive has no request.json; add the job request to it.")
    return request, uploads


def _take_member(
    bundle: tarfile.TarFile, member: tarfile.TarInfo, folder: Path, uploads: dict[str, Path], request: bytes | None
) -> bytes | None:
    if member.isdir() and member.name.rstrip("/") == "inputs":
        return request
    if not member.isfile():
        raise RequestRefused(400, f"The upload archive member {member.name!r} is not a regular file; send files only.")
    source = bundle.extractfile(member)
    assert source is not None  # a regular file always has content
    if member.name == "request.json" and request is None:
        return source.read()
    match = _INPUT_MEMBER.match(member.name)
    if match is None or match.group(1) in uploads:
        raise RequestRefused(
            400,
            f"Unexpected upload archive member {member.name!r}; send request.json and inputs/ROLE{{{', '.join(VOLUME_FORMATS)}}} once each.",
        )
    role, extension = match.groups()
    target = folder / "inputs" / (role + extension)
    with open(target, "wb") as handle:
        shutil.copyfileobj(source, handle)
    _refuse_dicom(target, member.name)
    uploads[role] = target
    return request


def _refuse_dicom(path: Path, name: str) -> None:
    with open(path, "rb") as handle:
        handle.seek(_DICOM_MAGIC_OFFSET)
        if handle.read(4) == b"DICM":
            raise RequestRefused(
                400, f"{name} is a DICOM file; upload voxels and geometry only (NRRD or NIfTI), never DICOM tags."
            )

"""Fetching files and checking their sha256 (DESIGN rule 3: verify before use).

Only the standard library's :mod:`urllib` is used. A download is streamed into a file staged
beside its destination (:func:`~SlicerMedFuse.io.atomic.atomic_path`) while its sha256 is computed,
and is moved into place only after the size and digest match; on any failure the staged file is
deleted, so a destination path either holds a verified file or nothing new.
"""

from __future__ import annotations

import errno
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from SlicerMedFuse.errors import ModelError, ResourceError
from SlicerMedFuse.io.atomic import atomic_path
from SlicerMedFuse.progress import Progress

__all__ = ["ALLOWED_SCHEMES", "download", "sha256_file"]

#: URL schemes :func:`download` accepts.
ALLOWED_SCHEMES = ("https", "file")

_CHUNK = 1 << 20  # 1 MiB


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's contents as 64 lower-case hex digits, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _size_text(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # unreachable; keeps type checkers calm


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected_sha256: str,
    expected_size: int | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and check it, or leave nothing behind.

    Args:
        url: an ``https://`` or ``file://`` URL.
        dest: the file to create (its folder is created if needed); replaced if it exists.
        expected_sha256: the sha256 the file must have (64 hex digits).
        expected_size: the size in bytes it must have, if known (also sizes the progress bar).
        progress: receives ``update(fraction, "download", message)`` events; cancellation raises
            :class:`~SlicerMedFuse.errors.Cancelled` and removes the partial file.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        ModelError: the URL is not https/file, it cannot be fetched, or the size or sha256 differ.
        ResourceError: the disk is full.
    """
    scheme = urlparse(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ModelError(
            f"Cannot download {url}: only {' and '.join(s + '://' for s in ALLOWED_SCHEMES)} URLs are allowed."
        )
    expected_sha256 = expected_sha256.lower()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    progress = progress if progress is not None else Progress()
    # staged next to dest and moved into place only when size and digest match; removed on any failure
    with atomic_path(dest) as temp:
        with open(temp, "wb") as out:
            actual, received = _stream(url, out, expected_size, progress, timeout)
        if expected_size is not None and received != expected_size:
            raise ModelError(
                f"The download of {url} has {received} bytes instead of {expected_size}; "
                "the file was removed; try again or check the catalog."
            )
        if actual != expected_sha256:
            raise ModelError(
                f"The download of {url} failed its check (sha256 mismatch: expected {expected_sha256}, got {actual}); "
                "the file was removed; try again or check the catalog."
            )
    progress.update(1.0, "download", f"downloaded {dest.name}")
    return dest


def _stream(url: str, out: BinaryIO, expected_size: int | None, progress: Progress, timeout: float) -> tuple[str, int]:
    """Copy the response body into ``out``; returns its sha256 (hex) and the number of bytes received."""
    digest = hashlib.sha256()
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            length = response.headers.get("Content-Length")
            total = expected_size or (int(length) if length and length.isdigit() else None)
            progress.update(0.0, "download", f"downloading {url}")
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                received += len(chunk)
                if expected_size is not None and received > expected_size:
                    break  # larger than announced: fails the size check, no need to read on
                out.write(chunk)
                if total:
                    progress.update(received / total, "download", f"{_size_text(received)} of {_size_text(total)}")
                else:
                    progress.check_cancelled()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelError(
            f"Could not download {url} ({reason}); check the network connection or the catalog URL."
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ResourceError(f"The disk is full while downloading {url}; free some space and try again.") from exc
        raise ModelError(f"Could not download {url} ({exc}); check the network connection or the catalog URL.") from exc
    return digest.hexdigest(), received

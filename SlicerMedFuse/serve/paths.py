"""Server-side input paths: a client may name files only under the roots the server's config allow-lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from SlicerMedFuse.io import split_series_path

__all__ = ["PathRefused", "resolve_allowed_path"]


class PathRefused(ValueError):
    """A server-side path that is not under an allowed root, or does not exist; the message says which."""


def resolve_allowed_path(text: str, roots: Sequence[Path]) -> str:
    """The real path of ``text`` if it lies under one of ``roots``, after resolving ``..`` and symlinks.

    A DICOM folder may carry ``#SERIES_UID`` (see ``medfuse run``); the folder part is checked and
    the suffix kept.

    Args:
        text: an absolute path on the server.
        roots: allowed folders, already resolved.

    Returns:
        The resolved path (with its ``#SERIES_UID`` suffix, if any), to hand to the job.

    Raises:
        PathRefused: no roots configured, a relative path, outside every root, or missing.
    """
    if not roots:
        raise PathRefused(
            "This server accepts no server-side paths (its config lists no allowed_roots); upload the file."
        )
    folder, series = split_series_path(text)
    if not folder.is_absolute():
        raise PathRefused(f"Server-side path {text!r} must be absolute, under one of the server's allowed roots.")
    # resolve() follows every symlink and removes '..', so a link inside a root that points out of it is refused.
    resolved = folder.resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise PathRefused(f"Server-side path {text!r} is outside the server's allowed roots; use a file under them.")
    if not resolved.exists():
        raise PathRefused(f"Server-side path {text!r} does not exist on the server; check the name.")
    return f"{resolved}#{series}" if series else str(resolved)

"""All-or-nothing file output: a cancelled or failed job never leaves a half-written file (DESIGN rule 4).

Every output is first written inside a hidden staging folder next to its final path (same
filesystem, so the final ``os.replace`` is atomic) under its *final file name*. Keeping the exact
name matters twice: SimpleITK picks its writer from the extension (``.nii.gz``, ``.nrrd``, ...),
and formats with a detached header (``.mhd`` + ``.raw``, ``.nhdr`` + ``.raw.gz``) reference their
data file by name, so the files the writer created are moved together, the named file last.

* :func:`atomic_path` stages one output,
* :func:`commit_outputs` stages several and renames them only when every writer succeeded,
* :func:`write_json_atomic` writes a JSON report atomically,
* :func:`replace_folder` moves a finished folder (a bundle, a checkpoint) onto its final path.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "commit_outputs", "replace_folder", "write_json_atomic"]

_STAGING_PREFIX = ".medfuse-tmp-"


class _Staged:
    """One output staged as ``<parent>/.medfuse-tmp-XXXX/<name>`` until :meth:`commit` or :meth:`discard`."""

    def __init__(self, path: Path) -> None:
        self.final = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=path.parent))
        self.temp = self.folder / path.name

    def check_written(self) -> None:
        if not self.temp.is_file():
            raise FileNotFoundError(f"the writer did not create the output file '{self.final}'")

    def commit(self) -> None:
        """Move the written files onto their final paths: companions (detached data) first, the named file last."""
        companions = [p for p in self.folder.iterdir() if p.name != self.temp.name]
        for companion in companions:
            os.replace(companion, self.final.parent / companion.name)
        os.replace(self.temp, self.final)
        self.discard()

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write instead of ``path``; it replaces ``path`` only on success.

    The temporary path has the same file name as ``path`` (so extension-based writers pick the
    right format) and lies in a hidden folder in the same directory. Missing parent folders of
    ``path`` are created. On an exception inside the ``with`` block everything written is deleted,
    an existing file at ``path`` is left untouched and the exception propagates.

    Args:
        path: the final output path.

    Yields:
        The path to write to.

    Raises:
        FileNotFoundError: when the block ended without creating the temporary file.

    Example:
        >>> with atomic_path("out/seg.nii.gz") as tmp:  # doctest: +SKIP
        ...     sitk.WriteImage(image, str(tmp))
    """
    staged = _Staged(Path(path))
    try:
        yield staged.temp
        staged.check_written()
        staged.commit()
    finally:
        staged.discard()


def commit_outputs(writers: Mapping[Path, Callable[[Path], None]]) -> list[Path]:
    """Write several outputs all-or-nothing: each writer writes a temporary file, then all are renamed.

    Every writer is called with the temporary path it must write (same file name as its final
    path). Only when *all* writers returned without error are the files renamed onto their final
    paths; if any writer raises, every temporary file is deleted, no final path is touched, and the
    exception propagates. (The renames themselves are single ``os.replace`` calls on the same
    filesystem, so the window in which only part of the outputs is in place is a few microseconds.)

    Args:
        writers: final output path -> callable that writes the file at the path it is given.
            ``write_image`` and ``write_json_atomic`` work as writers, e.g.
            ``{path: lambda tmp: write_image(image, tmp)}``.

    Returns:
        The final paths, in the order of ``writers``.

    Raises:
        ValueError: when two keys name the same file.
        FileNotFoundError: when a writer returned without creating its file.
    """
    finals = [Path(p) for p in writers]
    resolved = [p.resolve() for p in finals]
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"commit_outputs got the same output path twice: {[str(p) for p in finals]}")
    staged: list[_Staged] = []
    try:
        for final, write in zip(finals, writers.values(), strict=True):
            item = _Staged(final)
            staged.append(item)
            write(item.temp)
        for item in staged:
            item.check_written()
        for item in staged:
            item.commit()
    finally:
        for item in staged:
            item.discard()
    return finals


def _json_default(value: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable (reports often hold them)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_json_atomic(obj: Any, path: str | os.PathLike[str], *, indent: int = 2) -> Path:
    """Write ``obj`` as UTF-8 JSON to ``path`` atomically (numpy values and paths are converted).

    Args:
        obj: a JSON-ready object (dicts, lists, str, numbers, numpy scalars/arrays, paths).
        path: the output file.
        indent: JSON indentation.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: when ``obj`` holds a value JSON cannot represent (nothing is written).
    """
    text = json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def replace_folder(staged: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Rename the finished folder ``staged`` to ``target``, replacing an existing ``target``.

    Both must lie on one file system (stage the folder next to its target), so each rename is
    atomic: readers see the old folder or the new one, never a mix. When the second rename fails
    the old folder is put back.

    Args:
        staged: the complete new folder.
        target: its final path.

    Returns:
        ``target`` as a :class:`~pathlib.Path`.
    """
    source, final = Path(staged), Path(target)
    if not final.exists():
        os.rename(source, final)
        return final
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.rename(final, old)
    try:
        os.rename(source, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final

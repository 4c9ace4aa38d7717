"""What a server is allowed to do: where it keeps jobs, which server-side folders clients may name, its limits."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.models.store import default_home

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "ServerConfig", "read_config_file", "server_home"]

#: Default limit on one job's upload (all its input volumes together), in MiB.
DEFAULT_MAX_UPLOAD_MB = 2048


def server_home() -> Path:
    """``$MEDFUSE_HOME/server`` (default ``~/.medfuse/server``): the token and the jobs."""
    return default_home() / "server"


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Settings of one server.

    Attributes:
        home: folder holding the token file and ``jobs/``.
        allowed_roots: server-side folders whose files a job may name as inputs (resolved, absolute);
            empty: clients must upload their inputs.
        max_upload_bytes: largest request body accepted, in bytes (413 beyond it).
        max_concurrent_jobs: jobs running at once; further jobs wait in a queue.
        device: compute device handed to every job (``auto``, ``cpu``, ``cuda[:N]``).
        cancel_grace_s: seconds a cancelled job gets to clean up after SIGTERM before SIGKILL.
    """

    home: Path = dataclasses.field(default_factory=server_home)
    allowed_roots: tuple[Path, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    max_concurrent_jobs: int = 1
    device: str = "auto"
    cancel_grace_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_concurrent_jobs < 1:
            raise UsageError(f"max_concurrent_jobs must be at least 1; got {self.max_concurrent_jobs}.")
        if self.max_upload_bytes < 1:
            raise UsageError(f"The upload limit must be positive; got {self.max_upload_bytes} bytes.")
        roots = []
        for root in self.allowed_roots:
            resolved = Path(root).expanduser().resolve()
            if not resolved.is_dir():
                raise UsageError(f"The allowed root {root} is not a folder; create it or leave it out.")
            roots.append(resolved)
        object.__setattr__(self, "allowed_roots", tuple(roots))
        object.__setattr__(self, "home", Path(self.home).expanduser())

    @property
    def jobs_dir(self) -> Path:
        """``<home>/jobs``: one folder per job."""
        return self.home / "jobs"

    @property
    def threads_per_job(self) -> int:
        """CPU threads each job's torch may use, so that concurrent jobs share the cores instead of fighting."""
        return max(1, (os.cpu_count() or 1) // self.max_concurrent_jobs)


def read_config_file(path: str | os.PathLike[str]) -> dict:
    """Settings from a JSON server config: ``allowed_roots`` (list of folders), ``max_upload_mb``, ``max_jobs``, ``device``.

    Args:
        path: the JSON file.

    Returns:
        Keyword arguments for :class:`ServerConfig` (only the keys the file sets).

    Raises:
        UsageError: unreadable file, malformed JSON or an unknown key.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"Cannot read the server config {path} ({error.strerror}); check the path.") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"The server config {path} is not valid JSON (line {error.lineno}); fix it.") from None
    if not isinstance(data, dict):
        raise UsageError(f"The server config {path} must hold a JSON object.")
    known = {"allowed_roots", "max_upload_mb", "max_jobs", "device"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"The server config {path} has unknown keys {unknown}; known: {sorted(known)}.")
    settings: dict = {}
    if "allowed_roots" in data:
        settings["allowed_roots"] = tuple(Path(root) for root in _strings(data["allowed_roots"], path))
    if "max_upload_mb" in data:
        settings["max_upload_bytes"] = int(data["max_upload_mb"]) * 1024 * 1024
    if "max_jobs" in data:
        settings["max_concurrent_jobs"] = int(data["max_jobs"])
    if "device" in data:
        settings["device"] = str(data["device"])
    return settings


def _strings(value: object, path: str | os.PathLike[str]) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UsageError(f"'allowed_roots' in {path} must be a list of folder paths.")
    return value

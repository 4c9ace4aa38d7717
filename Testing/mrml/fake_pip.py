"""A :class:`MedFuseLib.runner.ProcessRunner` that replays captured pip output instead of running pip.

Each started command gets the next scripted :class:`PipScript`: the stdout lines it prints (one per
poll), its stderr and its exit code; a dry-run writes the given report to the ``--report`` path.
The texts come from real pip runs (``pip_captures/``, see its README).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent / "pip_captures"


def captured_lines(name: str) -> list[str]:
    """The lines of one captured pip output file."""
    return (CAPTURES / name).read_text(encoding="utf-8").splitlines()


def captured_report(name: str = "dry_run_report_safetensors_jsonschema.json") -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text(encoding="utf-8"))


@dataclasses.dataclass
class PipScript:
    """What one fake pip process prints and returns."""

    stdout: list[str] = dataclasses.field(default_factory=list)
    stderr: list[str] = dataclasses.field(default_factory=list)
    returncode: int = 0
    report: dict[str, Any] | None = None


class FakePipProcess:
    """A :class:`MedFuseLib.runner.Job` that prints one scripted line per poll."""

    def __init__(self, command: list[str], script: PipScript) -> None:
        self.command = command
        self.script = script
        self.cancelled = False
        self.waited = False
        self._pending = list(script.stdout)
        if "--report" in command and script.report is not None:
            Path(command[command.index("--report") + 1]).write_text(json.dumps(script.report), encoding="utf-8")

    @property
    def done(self) -> bool:
        return self.cancelled or not self._pending

    @property
    def returncode(self) -> int | None:
        if self.cancelled:
            return -15
        return self.script.returncode if not self._pending else None

    @property
    def error_message(self) -> str:
        if self.cancelled:
            return "The job was cancelled."
        return "\n".join(self.script.stderr[-10:]) if self.script.returncode else ""

    def poll(self) -> list[dict[str, Any]]:
        if self.cancelled or not self._pending:
            return []
        return [{"event": "log", "level": "info", "message": self._pending.pop(0)}]

    def cancel(self) -> None:
        if self._pending:
            self.cancelled = True

    def wait(self, timeout: float | None = None) -> int:
        self.waited = True
        self._pending.clear()
        return self.returncode or 0


class FakePipRunner:
    """Hands out :class:`FakePipProcess` objects, one per started command, in script order."""

    def __init__(self, *scripts: PipScript) -> None:
        self.scripts = list(scripts)
        self.processes: list[FakePipProcess] = []
        self.environments: list[dict[str, str]] = []
        self.constraints: list[str] = []

    def start(self, command: list[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None):
        assert self.scripts, f"unexpected command: {command}"
        options = command[command.index("install") :]
        if "-c" in options:
            self.constraints.append(Path(options[options.index("-c") + 1]).read_text(encoding="utf-8"))
        self.environments.append(dict(env or {}))
        process = FakePipProcess(list(command), self.scripts.pop(0))
        self.processes.append(process)
        return process

    @property
    def commands(self) -> list[list[str]]:
        return [process.command for process in self.processes]


def launched_module(command: list[str]) -> str:
    """What a pip command runs: ``pip`` for ``python -m pip``, ``light_the_torch`` for its entry point."""
    if command[1] == "-m":
        return command[2]
    assert command[1] == "-c" and "from light_the_torch._cli import main" in command[2], command
    return "light_the_torch"

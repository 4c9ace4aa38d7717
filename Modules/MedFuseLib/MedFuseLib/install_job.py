"""The first-use install as a background job: pip in a child process, polled, with progress and cancel.

:class:`InstallJob` runs up to three ``pip install`` commands one after the other, each in its own
process started by a :class:`MedFuseLib.runner.ProcessRunner` (the same runner the backend jobs use),
so Slicer stays responsive for the minutes a 1-3 GB download takes:

1. *bootstrap* (only when torch comes through light-the-torch and that is not installed yet): install
   light-the-torch itself; when that fails, torch comes from PyPI instead.
2. *resolve*: ``install --dry-run --report`` under the constraints file. An unsatisfiable pin (no
   torch build for this Python, a conflict with Slicer's numpy) fails here, before anything is
   installed, with one sentence naming the fix; the report lists what will be installed. A version
   that does not exist fails before any download; to read dependencies pip fetches each candidate's
   metadata, or its whole wheel where the index serves no metadata file (pip's cache then serves the
   real install).
3. *install*: the same command for real, its output parsed into progress.

The job has the panel's job protocol (``done``, ``succeeded``, ``error_message``, ``fraction``,
``stage``, ``messages``, ``poll``, ``cancel``, ``cleanup``).

What a cancel leaves: during the bootstrap, the dry-run and the downloads, pip is killed (its whole
process tree) and nothing new is installed; light-the-torch may remain if its step had finished.
Once pip has started installing (``Installing collected packages``, usually the last minute), the
cancel waits for it to finish: killing pip while it copies a package's files would leave that package
broken. Packages pip finished installing stay installed, so the next Apply resumes cleanly: it asks
only for what is still missing. pip unpacks into the job's own temporary folder, which ``cleanup()``
removes; finished downloads stay in pip's cache, so a resumed install does not fetch them again.

Written for Python 3.9 as well: an old Slicer imports the installer to say which Slicer it needs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from MedFuseLib.package_versions import normalize_name
from MedFuseLib.pip_output import PipProgress, PlannedInstall, explain_pip_failure, planned_installs
from MedFuseLib.runner import Job, ProcessRunner

__all__ = ["InstallJob", "InstallPlan"]

_log = logging.getLogger("MedFuse.install")

#: Share of the progress bar the steps before the real install take.
_RESOLVED_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class InstallPlan:
    """What an :class:`InstallJob` installs, and how.

    Args:
        requirements: requirement strings to install, e.g. ``("torch==2.13.0", "monai==1.6.1")``.
        constraints: text of the pip constraints file (``name==version`` lines).
        python: interpreter whose environment receives the packages (Slicer's ``PythonSlicer``).
        python_version: that interpreter's ``(major, minor, micro)``.
        pinned: normalized name -> version of the packages that belong to Slicer and must never be
            replaced (also pinned in ``constraints``).
        installer_module: ``"pip"``, or ``"light_the_torch"``: pip that takes torch from PyTorch's
            own index (download.pytorch.org) for this computer's CUDA driver, or the CPU build.
        bootstrap: requirements pip installs first (light-the-torch), empty for none.
        raw_progress: pip >= 24.1: ask for ``--progress-bar raw`` byte counts.
    """

    requirements: tuple[str, ...]
    constraints: str
    python: str
    python_version: tuple[int, ...]
    pinned: Mapping[str, str] = dataclasses.field(default_factory=dict)
    installer_module: str = "pip"
    bootstrap: tuple[str, ...] = ()
    raw_progress: bool = False


class InstallJob:
    """Installs an :class:`InstallPlan` in child processes; poll it from a timer (never blocks).

    Args:
        plan: what to install.
        runner: starts the pip processes (e.g. :class:`MedFuseLib.runner.SubprocessRunner`).
        environment: environment of the pip processes; default ``os.environ``.
        version_of: distribution name -> installed version or None; read for every planned
            distribution before pip installs anything (:attr:`versions_before`).
    """

    def __init__(
        self,
        plan: InstallPlan,
        runner: ProcessRunner,
        environment: Mapping[str, str] | None = None,
        version_of: Callable[[str], str | None] | None = None,
    ) -> None:
        if not plan.requirements:
            raise ValueError("an install plan needs at least one requirement")
        self.plan = plan
        self.runner = runner
        self.fraction = 0.0
        self.stage = "Waiting"
        self.messages: list[str] = []
        self.planned: list[PlannedInstall] = []
        self.versions_before: dict[str, str | None] = {}  # normalized name -> version, of the planned ones
        self.cancelled = False
        self._version_of = version_of
        self._installer_module = plan.installer_module
        self._steps = (["bootstrap"] if plan.bootstrap else []) + ["resolve", "install"]
        self._step: str | None = None
        self._process: Job | None = None
        self._lines: list[str] = []
        self._progress = PipProgress(total=len(plan.requirements))
        self._cancel_waits = False
        self._finished = False
        self._error = ""
        self._workdir = tempfile.mkdtemp(prefix="medfuse-install-")
        self._constraints_path = os.path.join(self._workdir, "constraints.txt")
        self._report_path = os.path.join(self._workdir, "dry-run-report.json")
        with open(self._constraints_path, "w", encoding="utf-8") as stream:
            stream.write(plan.constraints)
        self._environment = self._pip_environment(environment)

    # --- job protocol ------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._finished

    @property
    def succeeded(self) -> bool:
        return self._finished and not self.cancelled and not self._error

    @property
    def error_message(self) -> str:
        if self.cancelled:
            return "The installation was cancelled; press Apply to resume it."
        return self._error

    @property
    def step(self) -> str | None:
        """``"bootstrap"``, ``"resolve"`` or ``"install"`` while running, None before and after."""
        return self._step

    def poll(self) -> list[dict[str, Any]]:
        """Start the next step when one is due, read its output, finish it when its process has ended."""
        if self._finished:
            return []
        if self._process is None:
            self._start_next_step()
            if self._process is None:
                return []
        process = self._process
        ended = process.done  # read before draining, so the last lines are not missed
        events = process.poll()
        for event in events:
            self._take_line(str(event.get("message", "")) if event.get("event") == "log" else json.dumps(event))
        if ended:
            self._end_step(process)
        return events

    def cancel(self) -> None:
        """Stop the install; while pip installs (not downloads) it waits for pip to finish (see the module doc)."""
        if self._finished or self.cancelled:
            return
        if self._step == "install" and self._progress.installing:
            if not self._cancel_waits:
                self._cancel_waits = True
                self.messages.append(
                    "pip is installing the downloaded packages; stopping now would break them, so the "
                    "installation finishes first."
                )
            return
        self.cancelled = True
        if self._process is not None:
            self._process.cancel()
        else:
            self._finish()

    def cleanup(self) -> None:
        """Stop a running pip and remove the job's temporary folder (constraints, report, downloads).

        While pip installs, it is left to finish (see the module doc) and the folder is removed after.
        """
        process = self._process
        if self._finished or process is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            return
        if self._step == "install" and self._progress.installing:
            threading.Thread(
                target=self._remove_after, args=(process,), name="medfuse-install-cleanup", daemon=True
            ).start()
            return
        self.cancelled = True
        process.cancel()
        threading.Thread(
            target=self._remove_after, args=(process,), name="medfuse-install-cleanup", daemon=True
        ).start()

    def _remove_after(self, process: Job) -> None:
        process.wait()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def wait(self, timeout: float | None = None, poll_interval: float = 0.2) -> bool:
        """Poll until done (for scripts and tests); returns :attr:`succeeded`.

        Raises:
            TimeoutError: not done after ``timeout`` seconds (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished:
            self.poll()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the installation did not finish within {timeout} s")
            time.sleep(poll_interval)
        return self.succeeded

    # --- steps -------------------------------------------------------------------------------------
    def _pip_environment(self, environment: Mapping[str, str] | None) -> dict[str, str]:
        temporary = os.path.join(self._workdir, "tmp")
        os.makedirs(temporary, exist_ok=True)
        result = dict(os.environ if environment is None else environment)
        # pip unpacks downloads under the temporary folder; a killed pip cannot clean it, cleanup() can.
        result.update(TMPDIR=temporary, TEMP=temporary, TMP=temporary, PYTHONUNBUFFERED="1", PIP_NO_INPUT="1")
        return result

    def _pip(self, module: str, *arguments: str) -> list[str]:
        if module == "light_the_torch":
            # ``python -m light_the_torch`` exits 0 even when pip fails (its __main__ drops the exit
            # code); its ``ltt`` entry point, light_the_torch._cli:main, returns it.
            launcher = ["-c", "import sys; from light_the_torch._cli import main; sys.exit(main())"]
        else:
            launcher = ["-m", module]
        return [self.plan.python, *launcher, "install", "--disable-pip-version-check", *arguments]

    def _command(self, step: str) -> list[str]:
        constraints = ("-c", self._constraints_path)
        if step == "bootstrap":
            return self._pip("pip", *constraints, *self.plan.bootstrap)
        if step == "resolve":
            return self._pip(
                self._installer_module,
                "--dry-run",
                "--report",
                self._report_path,
                *constraints,
                *self.plan.requirements,
            )
        bar = "raw" if self.plan.raw_progress else "off"
        return self._pip(self._installer_module, "--progress-bar", bar, *constraints, *self.plan.requirements)

    _STAGES = {
        "bootstrap": "Installing light-the-torch (it picks the torch build for this computer's GPU)",
        "resolve": "Checking which package versions fit this Slicer",
        "install": "Starting pip",
    }

    def _start_next_step(self) -> None:
        if not self._steps:
            self._finish()
            return
        self._step = self._steps.pop(0)
        self._lines = []
        self.stage = self._STAGES[self._step]
        command = self._command(self._step)
        _log.info("MedFuse install, %s: %s", self._step, " ".join(command))
        self._process = self.runner.start(command, env=self._environment, cwd=self._workdir)

    def _take_line(self, line: str) -> None:
        if not line.strip():
            return
        _log.info("pip: %s", line)
        self._lines.append(line)
        if self._step != "install":
            self.fraction = max(self.fraction, 0.02)
            self._note_download(line)
            return
        self._progress.feed(line)
        self.fraction = _RESOLVED_FRACTION + (1 - _RESOLVED_FRACTION) * self._progress.fraction
        self.stage = self._progress.stage
        self._note_download(line)

    def _note_download(self, line: str) -> None:
        """Show the file pip fetches (the dry-run of an old pip downloads whole wheels to read them)."""
        if not line.lstrip().startswith(("Downloading ", "Using cached ")):
            return
        file = PipProgress(total=1)
        file.feed(line)
        if file.current and (not self.messages or self.messages[-1] != file.current):
            self.messages.append(file.current)

    def _end_step(self, process: Job) -> None:
        step, self._step, self._process = self._step, None, None
        code = process.returncode
        if self.cancelled:
            self._finish()
            return
        if code != 0:
            output = self._lines + process.error_message.splitlines()
            if step == "bootstrap":
                # light-the-torch does not fit (e.g. it needs an older pip than Slicer's): torch from PyPI.
                self._installer_module = "pip"
                self.messages.append("light-the-torch could not be installed; torch comes from PyPI instead.")
                return
            self._error = explain_pip_failure(output, self.plan.python_version, dict(self.plan.pinned))
            self._finish()
            return
        if step == "resolve":
            self._read_report()
        elif step == "install" and self._cancel_waits:
            self.messages.append("The cancel came too late: the packages are installed.")

    def _read_report(self) -> None:
        if not os.path.isfile(self._report_path):  # pip stopped before resolving, whatever its exit code
            self._error = explain_pip_failure(self._lines, self.plan.python_version, dict(self.plan.pinned))
            self._finish()
            return
        try:
            with open(self._report_path, encoding="utf-8") as stream:
                self.planned = planned_installs(json.load(stream))
        except (OSError, ValueError, KeyError) as error:
            self._error = f"pip's dry-run report could not be read ({error}); press Apply again."
            self._finish()
            return
        replaced = [item for item in self.planned if normalize_name(item.name) in self.plan.pinned]
        if replaced:
            item = replaced[0]
            have = self.plan.pinned[normalize_name(item.name)]
            self._error = (
                f"Installing would replace this Slicer's {item.name} {have} with {item.version}, which "
                "SlicerMedFuse never does: install 3D Slicer 5.10 or later."
            )
            self._finish()
            return
        if self._version_of is not None:
            self.versions_before = {normalize_name(p.name): self._version_of(p.name) for p in self.planned}
        if not self.planned:
            self._steps = []  # everything is there already
        self._progress = PipProgress(total=max(len(self.planned), 1))
        self.fraction = _RESOLVED_FRACTION
        self.messages.append(
            f"{len(self.planned)} packages to install: " + ", ".join(f"{p.name} {p.version}" for p in self.planned)
        )

    def _finish(self) -> None:
        self._finished = True
        self._step = None
        if self.succeeded:
            self.fraction, self.stage = 1.0, "Installed"
        elif self.cancelled:
            self.stage = "Cancelled"
        else:
            self.stage = "Failed"

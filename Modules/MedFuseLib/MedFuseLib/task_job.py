"""One backend task run from Slicer: export input nodes, run the CLI, stream progress, read results.

Every MedFuse module Logic uses :class:`BackendTaskJob`::

    job = BackendTaskJob("superres", {"volume": inputNode}, ["volume"], {"method": "bspline"})
    job.start()
    ... every 100 ms (a Qt timer in the app, a loop in tests): job.poll(); show job.fraction, job.stage
    if job.succeeded:
        image = job.result_images()["volume"]   # then mrml_bridge.image_to_volume_node(...)
    job.cleanup()

Inputs are written to a private temporary folder (the user's nodes are only read, never changed);
the backend writes outputs there and nothing reaches the scene unless the job succeeded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import SimpleITK as sitk

from MedFuseLib.mrml_bridge import volume_node_to_image
from MedFuseLib.runner import Job, ProcessRunner, SubprocessRunner, backend_command, backend_environment

__all__ = ["BackendTaskJob"]

_KEEP_TEMP_ENV = "MEDFUSE_KEEP_TEMP"


class BackendTaskJob:
    """A backend task run out of process on volumes from the scene.

    Args:
        task: backend task name, e.g. ``"superres"``.
        input_nodes: input role -> volume node (scalar or labelmap); exported with LPS geometry.
        output_roles: the output roles to request; each is written as ``<role>.nrrd`` (none for a task whose result is its report).
        params: task parameters (name -> value); validated by the backend.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        model: model bundle id or folder for tasks that run a network (``--model``); None uses the
            task's default model.
        runner: process runner; default :class:`~MedFuseLib.runner.SubprocessRunner`.
        python: interpreter for the backend; default ``PythonSlicer`` in Slicer, else ``sys.executable``.
        keep_temp: keep the temporary folder after :meth:`cleanup` (also env ``MEDFUSE_KEEP_TEMP=1``).
        temp_root: parent folder of the temporary folder; default the system's temp folder.
    """

    def __init__(
        self,
        task: str,
        input_nodes: Mapping[str, Any],
        output_roles: Sequence[str],
        params: Mapping[str, Any] | None = None,
        *,
        device: str = "auto",
        model: str | os.PathLike | None = None,
        runner: ProcessRunner | None = None,
        python: str | None = None,
        keep_temp: bool = False,
        temp_root: str | os.PathLike | None = None,
    ) -> None:
        for role, node in input_nodes.items():
            if node is None:
                raise ValueError(f"input '{role}' has no volume selected")
        self.task = task
        self.input_nodes = dict(input_nodes)
        self.output_roles = list(output_roles)
        self.params = dict(params or {})
        self.device = device
        self.model = model
        self.runner: ProcessRunner = runner if runner is not None else SubprocessRunner()
        self.python = python
        self.keep_temp = keep_temp or os.environ.get(_KEEP_TEMP_ENV, "") == "1"
        self.temp_root = temp_root
        self.temp_dir: Path | None = None
        self.command: list[str] = []
        self.fraction = 0.0
        self.stage = ""
        self.messages: list[str] = []
        self._job: Job | None = None
        self._outputs: dict[str, str] = {}
        self._report: dict[str, Any] = {}
        self._error = ""
        self._cancelled = False

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Export the inputs to NRRD in a private folder and start the backend."""
        if self._job is not None:
            raise RuntimeError("This job was started already; create a new BackendTaskJob to run again.")
        self.temp_dir = Path(tempfile.mkdtemp(prefix=f"medfuse-{self.task}-", dir=self.temp_root))
        try:
            inputs = self._export_inputs(self.temp_dir / "inputs")
            output_dir = self.temp_dir / "outputs"
            output_dir.mkdir()
            outputs = {role: str(output_dir / f"{role}.nrrd") for role in self.output_roles}
            self._outputs = dict(outputs)
            self.command = backend_command(
                self.task,
                inputs,
                outputs,
                self.params,
                device=self.device,
                python=self.python,
                report=str(self.temp_dir / "report.json"),
                model=self.model,
            )
            self._job = self.runner.start(self.command, env=backend_environment(), cwd=str(self.temp_dir))
        except BaseException:
            self.cleanup()
            raise
        self.stage = "starting"

    def _export_inputs(self, folder: Path) -> dict[str, str]:
        folder.mkdir()
        paths: dict[str, str] = {}
        for role, node in self.input_nodes.items():
            path = folder / f"{role}.nrrd"
            sitk.WriteImage(volume_node_to_image(node), str(path), useCompression=False)
            paths[role] = str(path)
        return paths

    def poll(self) -> list[dict[str, Any]]:
        """New backend events (never blocks); updates :attr:`fraction`, :attr:`stage`, :attr:`messages`."""
        if self._job is None:
            return []
        events = self._job.poll()
        for event in events:
            kind = event.get("event")
            if kind == "progress":
                self.fraction = float(event.get("fraction", self.fraction))
                self.stage = str(event.get("stage", self.stage))
                if event.get("message"):
                    self.messages.append(str(event["message"]))
            elif kind == "log":
                self.messages.append(str(event.get("message", "")))
            elif kind == "result":
                self._outputs.update({str(k): str(v) for k, v in dict(event.get("outputs", {})).items()})
                self._report = dict(event.get("report", {}))
                self.fraction, self.stage = 1.0, "done"
            elif kind == "error":
                self._error = str(event.get("message", ""))
        return events

    @property
    def started(self) -> bool:
        return self._job is not None

    @property
    def done(self) -> bool:
        """True once the backend exited and all its events were read."""
        return self._job is not None and self._job.done

    @property
    def returncode(self) -> int | None:
        return None if self._job is None else self._job.returncode

    @property
    def succeeded(self) -> bool:
        return self.done and self.returncode == 0 and not self._cancelled

    @property
    def error_message(self) -> str:
        """The backend's one-sentence error (empty while running or after success)."""
        if self._error:
            return self._error
        if self._cancelled:
            return "The job was cancelled."
        return "" if self._job is None else self._job.error_message

    @property
    def report(self) -> dict[str, Any]:
        """The job report from the backend's result event (empty until it arrives)."""
        return self._report

    def cancel(self) -> None:
        """Stop the backend and its child processes; no output is read afterwards."""
        if self._job is not None and not self.done:
            self._cancelled = True
            self._job.cancel()
            self.stage = "cancelling"

    def wait(self, timeout: float | None = None) -> int:
        """Block until the backend exits, then take in its remaining events; returns the exit code."""
        if self._job is None:
            raise RuntimeError("The job was not started; call start() first.")
        code = self._job.wait(timeout)
        self.poll()
        return code

    def result_images(self) -> dict[str, sitk.Image]:
        """The output images by role (LPS geometry), read after success.

        Raises:
            RuntimeError: with the backend's error sentence when the job failed or was cancelled,
                or when it has not finished.
        """
        if not self.done:
            raise RuntimeError(f"The {self.task} job has not finished yet.")
        if not self.succeeded:
            raise RuntimeError(self.error_message or f"The {self.task} job failed (exit code {self.returncode}).")
        images: dict[str, sitk.Image] = {}
        for role in self.output_roles:
            path = self._outputs.get(role)
            if not path or not Path(path).is_file():
                raise RuntimeError(f"The {self.task} job finished but wrote no '{role}' output.")
            images[role] = sitk.ReadImage(path)
        return images

    def cleanup(self) -> None:
        """Cancel a running backend and remove the temporary folder (unless kept)."""
        if self._job is not None and self._job.returncode is None:
            self.cancel()
            try:
                self._job.wait(30)
            except Exception:  # cleanup must not raise over a stuck process; the folder still goes
                pass
        if self.temp_dir is not None and not self.keep_temp:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> BackendTaskJob:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

"""Backend jobs run one after another, each built from the results of the ones before.

The breast panel's "align sequences first" runs the registration task (rigid) for each assistant
sequence, then the breast-mass task on the aligned images. :class:`JobChain` gives such a
sequence the polling surface of one :class:`MedFuseLib.task_job.BackendTaskJob` (``poll``,
``fraction``, ``stage``, ``done``, ``succeeded``, ``error_message``, ``cancel``, ``cleanup``), so
a panel shows one progress bar and one Cancel for all of it. :class:`ImageInputJob` is a backend
job that also takes inputs that are images rather than scene nodes (the aligned sequences, a
label map made from a segmentation), so nothing is added to the scene before the end.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from MedFuseLib.task_job import BackendTaskJob

__all__ = ["ChainStep", "ImageInputJob", "JobChain"]


class ImageInputJob(BackendTaskJob):
    """A :class:`BackendTaskJob` with some inputs given as SimpleITK images (LPS geometry) instead of nodes.

    Args:
        *args, **kwargs: as for :class:`BackendTaskJob`.
        input_images: input role -> image, written beside the exported nodes.
    """

    def __init__(self, *args: Any, input_images: Mapping[str, sitk.Image] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.input_images = dict(input_images or {})
        clash = sorted(set(self.input_images) & set(self.input_nodes))
        if clash:
            raise ValueError(f"input {clash[0]!r} is given both as a node and as an image; give it once")

    def _export_inputs(self, folder: Path) -> dict[str, str]:
        paths = super()._export_inputs(folder)
        for role, image in self.input_images.items():
            path = folder / f"{role}.nrrd"
            sitk.WriteImage(image, str(path), useCompression=False)
            paths[role] = str(path)
        return paths


@dataclasses.dataclass(frozen=True)
class ChainStep:
    """One job of a chain.

    Attributes:
        title: what the step does, shown before the job's own stage ("aligning T2W to the T1C").
        weight: its share of the progress bar (relative to the other steps').
        build: gets the finished jobs of the earlier steps (in order) and returns the step's job,
            not started. It may raise ValueError or RuntimeError (one sentence): the chain then fails.
    """

    title: str
    weight: float
    build: Callable[[list[BackendTaskJob]], BackendTaskJob]


class JobChain:
    """Runs :class:`ChainStep` jobs one after another; the result is the last job's.

    Args:
        steps: the steps, at least one.
        input_nodes: the user's nodes by role, for whoever puts the result into the scene.
    """

    POLL_INTERVAL_S = 0.1

    def __init__(self, steps: Sequence[ChainStep], input_nodes: Mapping[str, Any]) -> None:
        if not steps:
            raise ValueError("a job chain needs at least one step")
        self.steps = list(steps)
        self.input_nodes = dict(input_nodes)
        self.jobs: list[BackendTaskJob] = []
        self._error = ""
        self._cancelled = False
        self._finished = False

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Build and start the first step's job."""
        if self.jobs:
            raise RuntimeError("This chain was started already; build a new one to run again.")
        self._startNext()
        if self._error:  # the first step could not start: say so at once, as BackendTaskJob.start does
            raise ValueError(self._error)

    def _startNext(self) -> None:
        step = self.steps[len(self.jobs)]
        try:
            job = step.build(list(self.jobs))
            self.jobs.append(job)
            job.start()
        except (ValueError, RuntimeError, OSError) as error:
            self._fail(step, str(error))

    def _fail(self, step: ChainStep, message: str) -> None:
        # With several steps the sentence says which one failed ("Aligning T2W to the T1C failed: ...").
        self._error = f"{step.title[:1].upper()}{step.title[1:]} failed: {message}" if len(self.steps) > 1 else message
        self._finished = True

    def poll(self) -> list[dict[str, Any]]:
        """New events of the running job (never blocks); starts the next step when one finishes."""
        if self._finished or not self.jobs:
            return []
        job = self.jobs[-1]
        events = job.poll()
        if job.done:
            if self._cancelled or not job.succeeded:
                self._fail(self.steps[len(self.jobs) - 1], job.error_message)
            elif len(self.jobs) < len(self.steps):
                self._startNext()
            else:
                self._finished = True
        return events

    def cancel(self) -> None:
        """Stop the running job; no later step starts."""
        self._cancelled = True
        if self.jobs and not self._finished:
            self.jobs[-1].cancel()

    def wait(self, timeout: float | None = None) -> None:
        """Poll until every step finished or one failed (raises TimeoutError after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the job did not finish within {timeout:g} s")
            self.poll()
            time.sleep(self.POLL_INTERVAL_S)

    def cleanup(self) -> None:
        """Stop what runs and remove every step's temporary files."""
        for job in self.jobs:
            job.cleanup()

    # --- state ------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._finished

    @property
    def succeeded(self) -> bool:
        return (
            self._finished and not self._error and not self._cancelled and bool(self.jobs) and self.jobs[-1].succeeded
        )

    @property
    def error_message(self) -> str:
        return "The job was cancelled." if self._cancelled else self._error

    @property
    def fraction(self) -> float:
        total = sum(step.weight for step in self.steps) or 1.0
        finished = sum(step.weight for step in self.steps[: max(len(self.jobs) - 1, 0)])
        current = self.steps[len(self.jobs) - 1].weight * self.jobs[-1].fraction if self.jobs else 0.0
        return 1.0 if self.succeeded else min((finished + current) / total, 1.0)

    @property
    def stage(self) -> str:
        if not self.jobs:
            return ""
        job = self.jobs[-1]
        return f"{self.steps[len(self.jobs) - 1].title}: {job.stage}" if len(self.steps) > 1 else job.stage

    @property
    def messages(self) -> list[str]:
        return [message for job in self.jobs for message in job.messages]

    @property
    def report(self) -> dict[str, Any]:
        """The last job's report (empty until it finished)."""
        return self.jobs[-1].report if self.jobs and len(self.jobs) == len(self.steps) else {}

    @property
    def model(self) -> Any:
        return self.jobs[-1].model if self.jobs else None

    def result_images(self) -> dict[str, sitk.Image]:
        """The last job's output images (raises RuntimeError with the error sentence when the chain failed)."""
        if not self.succeeded:
            raise RuntimeError(self.error_message or "The job has not finished yet.")
        return self.jobs[-1].result_images()

    def __enter__(self) -> JobChain:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

"""A started task that finishes itself: the console's non-blocking call (``logic.processAsync(...)``).

A :class:`TaskRun` holds a running backend job and what turns its output into scene nodes (the
Logic's ``finishJob``). Poll it, wait on it or cancel it::

    run = HemorrhageLogic().processAsync(slicer.util.getNode("CTHead"))
    run.fraction, run.stage          # 0.35, "inference"
    segmentation, table = run.wait() # blocks; the result nodes

Inside the Slicer application a :class:`QtTimerScheduler` polls the run from the event loop, so the
result appears in the scene by itself while Slicer stays responsive; ``run.result`` holds it then.
The scheduler is injected (:class:`Scheduler`), so the same flow is tested headless with a fake one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["QtTimerScheduler", "Scheduler", "TaskRun", "defaultScheduler"]

#: Time between two polls of a scheduled run (ms): fast enough for a progress bar, cheap for the CPU.
POLL_INTERVAL_MS = 200


class Scheduler(Protocol):
    """Calls ``callback`` every ``intervalMs`` until the handle it returns is stopped."""

    def every(self, intervalMs: int, callback: Callable[[], None]) -> Any: ...


class QtTimerScheduler:
    """A :class:`Scheduler` on ``qt.QTimer`` (the Slicer application's event loop)."""

    def every(self, intervalMs: int, callback: Callable[[], None]) -> Any:
        import qt  # only inside the application; the rest of this file needs no Qt

        timer = qt.QTimer()
        timer.setInterval(int(intervalMs))
        timer.connect("timeout()", callback)
        timer.start()
        return timer


def defaultScheduler() -> Scheduler | None:
    """A Qt timer scheduler inside the Slicer application, None elsewhere (the caller polls or waits)."""
    try:
        import slicer
    except ImportError:
        return None
    if getattr(slicer, "app", None) is None:
        return None
    try:
        import qt  # noqa: F401  (present in the application only)
    except ImportError:
        return None
    return QtTimerScheduler()


class TaskRun:
    """A started job and the step that puts its result into the scene once it is done.

    Args:
        job: a started job (:class:`MedFuseLib.task_job.BackendTaskJob` or a chain of them): ``poll()``,
            ``wait(timeout)``, ``cancel()``, ``cleanup()``, ``done``, ``succeeded``, ``fraction``, ``stage``.
        finish: job -> result nodes; called once, after the job is done (it raises for a failed job
            and releases the job's files).
        scheduler: polls the run until it is done; None leaves polling to the caller.

    Attributes:
        result: what ``finish`` returned (None until then).
        error: the sentence of a failed, cancelled or unloadable run ("" otherwise).
    """

    def __init__(self, job: Any, finish: Callable[[Any], Any], scheduler: Scheduler | None = None) -> None:
        self.job = job
        self._finish = finish
        self.result: Any = None
        self.error = ""
        self._finished = False
        self._timer = scheduler.every(POLL_INTERVAL_MS, self.poll) if scheduler is not None else None

    @property
    def done(self) -> bool:
        """True once the job ended and its result (or error) was taken in."""
        return self._finished

    @property
    def succeeded(self) -> bool:
        return self._finished and not self.error

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1."""
        return float(self.job.fraction)

    @property
    def stage(self) -> str:
        return str(self.job.stage)

    def poll(self) -> bool:
        """Read the backend's new events (never blocks); finish the run when the job has ended. Returns :attr:`done`."""
        if self._finished:
            return True
        self.job.poll()
        if self.job.done:
            self._complete()
        return self._finished

    def cancel(self) -> None:
        """Stop the backend; nothing is added to the scene (the next poll or wait ends the run)."""
        if not self._finished:
            self.job.cancel()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the run is done and return its result nodes.

        Args:
            timeout: seconds to wait at most; None waits as long as it takes. After a timeout the
                job keeps running: wait again, or :meth:`cancel` it. Ctrl+C stops the backend and
                removes its files.

        Raises:
            TimeoutError: still running after ``timeout`` seconds (one sentence).
            RuntimeError: the job failed or was cancelled (the backend's sentence).
        """
        if not self._finished:
            try:
                self.job.wait(timeout)
            except (subprocess.TimeoutExpired, TimeoutError):
                raise TimeoutError(
                    f"The job is still running after {timeout:g} s; wait again, or stop it with cancel()."
                ) from None
            except BaseException:  # Ctrl+C: nothing half-done stays behind
                self.job.cancel()
                self.job.cleanup()
                self._stopTimer()
                raise
            self._complete()
        if self.error:
            raise RuntimeError(self.error)
        return self.result

    def stop(self) -> None:
        """Cancel the backend, wait for it to end and remove its files; nothing is added to the scene."""
        self.cancel()
        self.job.cleanup()
        self.poll()

    def _complete(self) -> None:
        self._stopTimer()
        if self._finished:
            return
        self._finished = True
        try:
            self.result = self._finish(self.job)
        except (RuntimeError, ValueError) as error:
            self.error = str(error)

    def _stopTimer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

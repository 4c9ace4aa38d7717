"""What a batch worker process keeps between cases: its task objects and its loaded models.

A worker runs many cases of one task. The task (its module, its plugins) is imported once per
process and each model bundle is loaded once per process and device
(:func:`SlicerMedFuse.models.bundle.keep_loaded_bundles`), not once per case. The local pool calls
:func:`prepare_worker` as its initializer; Dask workers call it from :class:`MedFuseWorkerPlugin`.
"""

from __future__ import annotations

from SlicerMedFuse.tasks.base import Task

__all__ = ["prepare_worker", "worker_task"]

_TASKS: dict[str, Task] = {}


def prepare_worker() -> None:
    """Set up a worker process for many cases: keep model bundles loaded after their first use."""
    from SlicerMedFuse.models.bundle import keep_loaded_bundles

    keep_loaded_bundles()


def worker_task(name: str) -> Task:
    """This process's instance of task ``name`` (created on first use).

    Raises:
        UsageError: no such task.
    """
    if name not in _TASKS:
        from SlicerMedFuse.tasks.registry import get_task

        _TASKS[name] = get_task(name)
    return _TASKS[name]

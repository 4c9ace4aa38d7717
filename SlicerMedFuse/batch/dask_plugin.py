"""The Dask worker plugin that prepares each worker process for many cases (imports dask distributed)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from SlicerMedFuse.batch.worker_state import prepare_worker

__all__ = ["MedFuseWorkerPlugin"]


class MedFuseWorkerPlugin(WorkerPlugin):
    """Runs :func:`~SlicerMedFuse.batch.worker_state.prepare_worker` on every worker, also on ones that join later.

    Models are then loaded once per worker process rather than once per case.
    """

    name = "medfuse-batch"

    def setup(self, worker) -> None:  # noqa: ARG002 - WorkerPlugin signature
        prepare_worker()

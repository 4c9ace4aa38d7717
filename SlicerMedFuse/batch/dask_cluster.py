"""Run cases on Dask distributed: an existing scheduler (``tcp://HOST:PORT``) or a LocalCluster on loopback.

Each case is one Dask task (``retries`` further attempts when it raises). When a worker dies
mid-case the scheduler reschedules the case on another worker (up to Dask's
``distributed.scheduler.allowed-failures``); the case's folder is committed atomically and at most
once (:mod:`SlicerMedFuse.batch.case_run`), so a retried case is neither lost nor written twice.
Every worker must be able to import SlicerMedFuse and read the inputs' paths and write the output
folder under the same names as this machine (a shared file system).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence

from SlicerMedFuse.batch.case_record import CaseOutcome
from SlicerMedFuse.batch.case_run import CaseJob, run_case
from SlicerMedFuse.batch.retry import attempts_failed
from SlicerMedFuse.errors import UsageError

__all__ = ["LOCAL_CLUSTER", "dask_client", "run_on_dask"]

#: ``--cluster`` value that starts a LocalCluster on 127.0.0.1 for the batch's lifetime.
LOCAL_CLUSTER = "local"

CONNECT_TIMEOUT_S = 20


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError(
            "Dask distributed is not installed; install it with: pip install 'SlicerMedFuse[batch]'."
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[object]:
    """A Dask client on ``scheduler``, or on a LocalCluster of ``workers`` processes bound to 127.0.0.1.

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running scheduler, or None for a LocalCluster.
        workers: LocalCluster worker processes (one case at a time each).

    Yields:
        A ``distributed.Client``; the LocalCluster (if any) is closed on exit.

    Raises:
        UsageError: Dask is not installed, or the scheduler cannot be reached.
    """
    distributed = _import_distributed()
    with _quiet_dask_logs():
        yield from _client(distributed, scheduler, workers)


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Dask logs every start and stop at INFO; show its warnings only, unless debugging (``medfuse --debug``)."""
    logger = logging.getLogger("distributed")
    previous = logger.level
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _client(distributed, scheduler: str | None, workers: int) -> Iterator[object]:
    if scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,  # a case is one process's work: torch and ITK hold the GIL part of the time
            host="127.0.0.1",  # never a public interface
            dashboard_address="127.0.0.1:0",  # its HTTP endpoint too, on a free port
        )
        with cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise UsageError(
            f"Cannot reach the Dask scheduler at {scheduler} ({type(error).__name__}); start it with "
            "'dask scheduler' or fix the address."
        ) from None
    with client:
        yield client


def run_on_dask(client, jobs: Sequence[CaseJob], retries: int, on_done: Callable[[CaseOutcome], None]) -> None:
    """Submit each job as one Dask task and call ``on_done`` once per case as results arrive.

    Args:
        client: a ``distributed.Client`` (see :func:`dask_client`).
        jobs: the cases to run.
        retries: further attempts for a case whose run raised.
        on_done: called in this process with each case's outcome (exactly once per case).
    """
    distributed = _import_distributed()
    from SlicerMedFuse.batch.dask_plugin import MedFuseWorkerPlugin

    client.register_plugin(MedFuseWorkerPlugin(), name=MedFuseWorkerPlugin.name)
    token = uuid.uuid4().hex[:8]  # keys unique per batch: a resumed batch never meets stale results
    futures = {
        client.submit(run_case, job, key=f"medfuse-{job.case.case_id}-{token}", retries=retries, pure=False): job
        for job in jobs
    }
    for future in distributed.as_completed(futures):
        case_id = futures[future].case.case_id
        try:
            outcome = future.result()
        except Exception as error:  # retries spent, or the case killed too many workers (KilledWorker)
            outcome = attempts_failed(case_id, error)
        on_done(outcome)
        future.release()

"""Run cases on this machine in a pool of worker processes.

Each worker is a fresh (spawned) process that imports the task once and keeps its models loaded
(:func:`~SlicerMedFuse.batch.worker_state.prepare_worker`). A case that raises something other
than a bad-input error is retried; when a worker process dies the pool is broken, so the cases it
had not finished run again in a new pool, each such round counting as an attempt.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from SlicerMedFuse.batch.case_record import CaseOutcome
from SlicerMedFuse.batch.case_run import CaseJob, run_case
from SlicerMedFuse.batch.retry import attempts_failed
from SlicerMedFuse.batch.worker_state import prepare_worker

__all__ = ["run_on_local_pool"]


def run_on_local_pool(
    jobs: Sequence[CaseJob], workers: int, retries: int, on_done: Callable[[CaseOutcome], None]
) -> None:
    """Run ``jobs`` on ``workers`` processes; call ``on_done`` once per case as it finishes.

    Args:
        jobs: the cases to run.
        workers: number of worker processes (at least 1).
        retries: further attempts for a case whose run raised or whose worker died.
        on_done: called in this process with each case's outcome (exactly once per case).
    """
    pending = {job.case.case_id: job for job in jobs}
    attempts = dict.fromkeys(pending, 0)
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    while pending:
        with ProcessPoolExecutor(min(workers, len(pending)), mp_context=context, initializer=prepare_worker) as pool:
            futures = {pool.submit(run_case, job): case_id for case_id, job in pending.items()}
            for future in as_completed(futures):
                case_id = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    attempts[case_id] += 1
                    error: BaseException | None = RuntimeError("its worker process died")
                except Exception as caught:
                    attempts[case_id] += 1
                    error = caught
                else:
                    error = None
                if error is None or attempts[case_id] > retries:
                    pending.pop(case_id)
                    on_done(outcome if error is None else attempts_failed(case_id, error, attempts[case_id]))

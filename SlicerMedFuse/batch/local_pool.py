"""Run cases on this machine in a pool of worker processes.

Each worker is a fresh (spawned) process that imports the task once and keeps its models loaded
(:func:`~SlicerMedFuse.batch.worker_state.prepare_worker`). A case that raises something other
than a bad-input error is retried up to ``retries`` times. A worker process that dies (killed, out
of memory) breaks the whole pool, and which case killed it is unknown: the unfinished cases run
again in a new pool without losing an attempt; after ``retries`` broken pools the remaining cases
run one per pool, where a death is the case's own and counts against it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
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
    broken_pools = 0
    while pending:
        isolate = broken_pools > retries
        groups = [[job] for job in pending.values()] if isolate else [list(pending.values())]
        for group in groups:
            broken = False
            for case_id, result in _pool_round(group, 1 if isolate else workers):
                if isinstance(result, CaseOutcome):
                    pending.pop(case_id)
                    on_done(result)
                    continue
                if isinstance(result, BrokenProcessPool) and not isolate:
                    broken = True  # which case's worker died is unknown: no attempt is counted
                    continue
                attempts[case_id] += 1
                if attempts[case_id] > retries:
                    pending.pop(case_id)
                    on_done(attempts_failed(case_id, result, attempts[case_id]))
            broken_pools += broken


def _pool_round(jobs: Sequence[CaseJob], workers: int) -> Iterator[tuple[str, CaseOutcome | BaseException]]:
    """Run ``jobs`` in one new pool; yields each case's outcome, or the exception its run ended with, as it comes."""
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=prepare_worker) as pool:
        futures = {pool.submit(run_case, job): job.case.case_id for job in jobs}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as error:  # BrokenProcessPool when a worker died, else the run's own error
                yield futures[future], error

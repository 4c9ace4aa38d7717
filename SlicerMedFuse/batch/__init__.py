"""``medfuse batch``: run a task over a cohort on a local process pool or on Dask distributed.

An entry point beside :mod:`SlicerMedFuse.cli` and :mod:`SlicerMedFuse.serve`: it imports
:mod:`SlicerMedFuse.api`, never the reverse. See docs/batch.md.
"""

from __future__ import annotations

from SlicerMedFuse.batch.batch_run import BatchOptions, BatchResult, run_batch
from SlicerMedFuse.batch.case_record import CaseOutcome
from SlicerMedFuse.batch.cohort import Case, cases_from_csv, cases_from_folder

__all__ = ["BatchOptions", "BatchResult", "Case", "CaseOutcome", "cases_from_csv", "cases_from_folder", "run_batch"]

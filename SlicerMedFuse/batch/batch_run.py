"""Run a task over a cohort: check everything first, skip finished cases, run the rest, write the table.

Example (any Python with the backend installed)::

    from SlicerMedFuse.batch import BatchOptions, cases_from_folder, run_batch
    from SlicerMedFuse.specs import task_spec

    cases = cases_from_folder("cohort", {"volume": "*.nii.gz"}, task_spec("superres"), {"method": "linear"})
    result = run_batch("superres", cases, "results", BatchOptions(workers=4))
    print(result.counts)  # {'ok': ..., 'failed': ..., 'skipped': ...}
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from SlicerMedFuse.batch.case_record import CaseOutcome, fingerprint, read_marker
from SlicerMedFuse.batch.case_run import STAGING_FOLDER, CaseJob
from SlicerMedFuse.batch.cohort import Case, input_file
from SlicerMedFuse.batch.dask_cluster import dask_client, run_on_dask
from SlicerMedFuse.batch.local_pool import run_on_local_pool
from SlicerMedFuse.batch.results_table import write_results
from SlicerMedFuse.batch.sizing import default_workers, threads_per_worker
from SlicerMedFuse.contract import TaskSpec
from SlicerMedFuse.errors import UsageError
from SlicerMedFuse.progress import Progress
from SlicerMedFuse.specs import task_spec

__all__ = ["BatchOptions", "BatchResult", "run_batch"]

_MARKER_KEYS = ("task", "model", "parameters", "outputs", "inputs_sha256")


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How a batch runs.

    Attributes:
        workers: worker processes (local pool or LocalCluster); None: :func:`default_workers`.
        scheduler: ``tcp://HOST:PORT`` of a Dask scheduler to run on, or None.
        local_cluster: run on a Dask LocalCluster on 127.0.0.1 instead of the local process pool.
        retries: further attempts for a case whose run raised or whose worker died.
        resume: keep finished cases (see :mod:`SlicerMedFuse.batch.case_record`) and run the others.
        write_roles: output roles to write per case; None: the task's primary output (if it has one).
        extension: image file extension of the outputs.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        model: a model bundle id or folder for tasks that use one (None: the task's default).
    """

    workers: int | None = None
    scheduler: str | None = None
    local_cluster: bool = False
    retries: int = 2
    resume: bool = False
    write_roles: tuple[str, ...] | None = None
    extension: str = ".nii.gz"
    device: str = "auto"
    model: str | None = None


@dataclasses.dataclass
class BatchResult:
    """What :func:`run_batch` returns.

    Attributes:
        outcomes: one per case, in cohort order.
        csv_path: the results table as CSV.
        json_path: the results table as JSON.
        seconds: wall time of the whole batch (s).
    """

    outcomes: list[CaseOutcome]
    csv_path: Path
    json_path: Path
    seconds: float

    @property
    def counts(self) -> dict[str, int]:
        """Number of cases per status (``ok``, ``failed``, ``skipped``)."""
        return {status: sum(o.status == status for o in self.outcomes) for status in ("ok", "failed", "skipped")}


def _write_roles(spec: TaskSpec, asked: Sequence[str] | None) -> tuple[str, ...]:
    if asked is None:
        return tuple(o.role for o in spec.outputs if o.primary)
    for role in asked:
        spec.output(role)  # UsageError naming the task's outputs
    return tuple(dict.fromkeys(asked))


def _check_output_folder(out: Path, cases: Sequence[Case], cohort_root: Path | None) -> None:
    """Refuse an output folder that is, holds or lies in an input folder: results would mix with (or overwrite) inputs."""
    resolved = out.resolve()
    folders = {input_file(source).resolve().parent for case in cases for source in case.inputs.values()}
    if cohort_root is not None:
        folders.add(cohort_root.resolve())
    for folder in sorted(folders):
        if resolved == folder or resolved in folder.parents or folder in resolved.parents:
            raise UsageError(
                f"The output folder {out} is, contains or lies in an input folder ({folder}); choose a folder apart from the inputs."
            )
    if out.exists() and not out.is_dir():
        raise UsageError(f"The output path {out} is a file; give a folder for the results.")


def _finished(
    task: str, case: Case, spec: TaskSpec, out: Path, roles: Sequence[str], model: str | None
) -> CaseOutcome | None:
    """The stored outcome of a case whose folder holds results for these inputs and parameters, else None."""
    marker = read_marker(out / case.case_id)
    if marker is None or case.problem:
        return None
    current = fingerprint(task, case, spec.resolve_parameters(case.params), roles, model)
    if any(marker.get(key) != current[key] for key in _MARKER_KEYS):
        return None
    return CaseOutcome(
        case.case_id,
        "skipped",
        summary=dict(marker.get("summary", {})),
        worker=str(marker.get("worker", "")),
        output_folder=str(out / case.case_id),
    )


def run_batch(
    task: str,
    cases: Sequence[Case],
    output_folder: str | Path,
    options: BatchOptions | None = None,
    *,
    progress: Progress | None = None,
    cohort_root: str | Path | None = None,
) -> BatchResult:
    """Run ``task`` on every case and write one folder per case plus the results table.

    Args:
        task: the task name.
        cases: the cohort (see :func:`~SlicerMedFuse.batch.cohort.cases_from_folder` and ``cases_from_csv``).
        output_folder: where ``<case_id>/`` folders, ``results.csv`` and ``results.json`` go.
        options: how to run (default: local process pool sized to the machine).
        progress: reporter of the cases done (fraction of cases).
        cohort_root: the cohort folder, if the cases came from one (the output may not lie in it).

    Returns:
        A :class:`BatchResult`; a failed case is a row with its sentence, not an exception.

    Raises:
        UsageError: unknown task or output role, an output folder among the inputs, or results
            already there without ``resume`` (all before any case runs).
    """
    options, progress, started = options or BatchOptions(), progress or Progress(), time.perf_counter()
    spec = task_spec(task)
    roles = _write_roles(spec, options.write_roles)
    out = Path(output_folder).absolute()  # workers elsewhere (Dask) share paths, not this working folder
    _check_output_folder(out, cases, Path(cohort_root) if cohort_root is not None else None)
    existing = [case.case_id for case in cases if (out / case.case_id).exists()]
    if existing and not options.resume:
        raise UsageError(
            f"The output folder {out} already holds results for {len(existing)} case(s) (e.g. '{existing[0]}'); "
            "add --resume to keep finished cases, or choose an empty folder."
        )
    out.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, CaseOutcome] = {}
    failed = 0

    def on_done(outcome: CaseOutcome) -> None:
        nonlocal failed
        outcomes[outcome.case_id] = outcome
        if outcome.status == "failed":
            failed += 1
            progress.log(f"{outcome.case_id}: {outcome.error}", level="warning")
        progress.update(len(outcomes) / max(1, len(cases)), f"{len(outcomes)}/{len(cases)} cases, {failed} failed")

    progress.start(task)
    jobs = []
    for case in cases:
        done = _finished(task, case, spec, out, roles, options.model) if options.resume else None
        if done is not None or case.problem:
            on_done(done or CaseOutcome(case.case_id, "failed", error=case.problem or ""))
            continue
        jobs.append(CaseJob(task, case, str(out), roles, options.extension, options.device, model=options.model))
    executor = _run_jobs(jobs, options, on_done)
    shutil.rmtree(out / STAGING_FOLDER, ignore_errors=True)  # what killed workers left half-assembled
    ordered = [outcomes[case.case_id] for case in cases]
    seconds = round(time.perf_counter() - started, 3)
    header = {"task": task, "executor": executor, "seconds": seconds, "output_folder": str(out)}
    result = BatchResult(ordered, *write_results(out, ordered, header), seconds)
    progress.result({"results_csv": str(result.csv_path), "results_json": str(result.json_path)}, header)
    return result


def _run_jobs(jobs: list[CaseJob], options: BatchOptions, on_done) -> str:
    """Run the jobs on the executor the options name; returns its description for the results table."""
    workers = max(1, min(options.workers or default_workers(), len(jobs) or 1))
    if options.scheduler is None:  # this machine: give each worker its share of the cores
        jobs = [dataclasses.replace(job, threads=threads_per_worker(workers)) for job in jobs]
    if not jobs:
        return "none"
    if options.scheduler is not None or options.local_cluster:
        with dask_client(options.scheduler, workers) as client:
            run_on_dask(client, jobs, options.retries, on_done)
        return f"dask {options.scheduler}" if options.scheduler else f"dask LocalCluster ({workers} workers)"
    run_on_local_pool(jobs, workers, options.retries, on_done)
    return f"local pool ({workers} workers)"

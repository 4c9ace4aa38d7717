"""A worker killed mid-case (local pool, and a Dask LocalCluster of 2 worker processes on loopback), and the CLI on Dask.

The test fixture is the site plugin task ``site-recorded-copy`` (``plugin_tasks.py``): it records
each attempt as a file named ``<tag>-<pid>`` in the folder ``MEDFUSE_TEST_ATTEMPTS`` names, then
sleeps for its ``seconds`` parameter; the test kills the worker process of the slow case's first
attempt while it sleeps.
"""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import SimpleITK as sitk

from SlicerMedFuse.batch import BatchOptions, cases_from_csv, run_batch
from SlicerMedFuse.batch.case_run import STAGING_FOLDER
from SlicerMedFuse.specs import task_spec

from .images import ramp_volume
from .plugin_tasks import install_plugin

pytest.importorskip("distributed")


def make_csv_cohort(
    root: Path, seconds: dict[str, float], corrupt: tuple[str, ...] = (), doomed: tuple[str, ...] = ()
) -> Path:
    root.mkdir()
    lines = ["case_id,image,tag,seconds,die"]
    for name, wait in seconds.items():
        if name in corrupt:
            (root / f"{name}.nii.gz").write_bytes(b"corrupt")
        else:
            sitk.WriteImage(ramp_volume(size=(8, 8, 4)), str(root / f"{name}.nii.gz"))
        lines.append(f"{name},{name}.nii.gz,{name},{wait},{name in doomed}")
    (root / "cohort.csv").write_text("\n".join(lines) + "\n")
    return root / "cohort.csv"


@pytest.fixture
def fixture_task(tmp_path, monkeypatch):
    """The plugin task on this process's path (LocalCluster workers are spawned with it) and its attempts folder."""
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    monkeypatch.setenv("MEDFUSE_TEST_ATTEMPTS", str(attempts))
    return task_spec("site-recorded-copy"), attempts


def read_table(out: Path) -> list[dict[str, str]]:
    with (out / "results.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    "options",
    [BatchOptions(workers=2, local_cluster=True, retries=1), BatchOptions(workers=2, retries=1)],
    ids=["dask-local-cluster", "local-pool"],
)
def test_worker_killed_mid_case_is_retried_once_elsewhere_and_nothing_is_lost(tmp_path, fixture_task, options):
    spec, attempts = fixture_task
    table = make_csv_cohort(tmp_path / "cohort", {"slow": 6.0, "q1": 0.0, "q2": 0.0, "bad": 0.0}, corrupt=("bad",))
    cases = cases_from_csv(table, spec, {})
    out = tmp_path / "out"
    finished: dict = {}

    def batch() -> None:
        finished["result"] = run_batch("site-recorded-copy", cases, out, options)

    runner = threading.Thread(target=batch)
    runner.start()
    deadline = time.monotonic() + 60
    while not list(attempts.glob("slow-*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    first = list(attempts.glob("slow-*"))
    assert first, "the slow case never started"
    killed = int(first[0].name.split("-")[1])
    assert killed != os.getpid()
    os.kill(killed, signal.SIGKILL)  # the worker process running 'slow', mid-case
    runner.join(timeout=60)
    assert not runner.is_alive(), "the batch did not finish after the worker was killed"

    rows = read_table(out)
    assert sorted(row["case_id"] for row in rows) == ["bad", "q1", "q2", "slow"]  # each case once
    status = {row["case_id"]: row for row in rows}
    assert [status[c]["status"] for c in ("slow", "q1", "q2")] == ["ok", "ok", "ok"]
    assert status["bad"]["status"] == "failed" and "Cannot read" in status["bad"]["error"]
    slow_attempts = sorted(attempts.glob("slow-*"))
    assert len(slow_attempts) == 2 and str(killed) not in status["slow"]["worker"]  # retried in another process
    assert status["slow"]["voxels"] == "256"
    assert sorted(p.name for p in out.iterdir()) == ["q1", "q2", "results.csv", "results.json", "slow"]
    assert not (out / STAGING_FOLDER).exists()
    assert finished["result"].counts == {"ok": 3, "failed": 1, "skipped": 0}


def test_a_case_that_kills_every_worker_fails_alone_on_the_local_pool(tmp_path, fixture_task):
    spec, attempts = fixture_task
    table = make_csv_cohort(tmp_path / "cohort", {"doomed": 0.0, "q1": 0.5, "q2": 0.5}, doomed=("doomed",))
    result = run_batch(
        "site-recorded-copy", cases_from_csv(table, spec, {}), tmp_path / "out", BatchOptions(workers=2, retries=0)
    )
    status = {o.case_id: o for o in result.outcomes}
    assert status["q1"].status == status["q2"].status == "ok"  # the broken pool's innocent cases ran again
    assert status["doomed"].status == "failed" and "BrokenProcessPool" in status["doomed"].error
    assert len(list(attempts.glob("doomed-*"))) == 2  # once in the shared pool, once alone
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["q1", "q2", "results.csv", "results.json"]


def test_cli_on_a_local_cluster_then_resume_skips_everything(tmp_path):
    from .test_cli import medfuse

    (tmp_path / "scans").mkdir()
    lines = ["case_id,volume,method"]
    for name in ("p1", "p2", "p3"):
        sitk.WriteImage(ramp_volume(), str(tmp_path / "scans" / f"{name}.nii.gz"))
        lines.append(f"{name},scans/{name}.nii.gz,bspline")
    (tmp_path / "cohort.csv").write_text("\n".join(lines) + "\n")
    args = ["batch", "superres", "--csv", str(tmp_path / "cohort.csv"), "-o", str(tmp_path / "out"), "--workers", "2"]
    first = medfuse(*args, "--cluster", "local")
    assert first.returncode == 0 and "3 ok, 0 skipped, 0 failed" in first.stderr, first.stderr
    assert "INFO" not in first.stderr and "Traceback" not in first.stderr
    again = medfuse(*args, "--cluster", "local", "--resume")
    assert again.returncode == 0 and "0 ok, 3 skipped, 0 failed" in again.stderr, again.stderr
    assert {row["status"] for row in read_table(tmp_path / "out")} == {"skipped"}

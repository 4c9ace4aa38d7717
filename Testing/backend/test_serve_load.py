"""Load test of ``medfuse serve``: 20 concurrent clients on loopback submitting small jobs for 60 s.

Checks that no job is lost or duplicated and that every client gets its own result (each client's
volume carries its own offset), and prints the server's peak RSS and the p50 / p95 latency of the
submit and status calls (the numbers in docs/server.md come from this test).
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import SimpleITK as sitk

from .images import ramp_volume
from .serve_harness import running_server

pytest.importorskip("fastapi")

CLIENTS = 20
OFFSET = 1000.0  # client i's volume is the ramp plus i * OFFSET, so its output's minimum names its owner
STATUS_POLL_S = 0.25
#: Each client submits a new job, waits for it and checks its result, again and again until this many
#: seconds have passed since the first submit (jobs already submitted then still finish).
DURATION_S = 60.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _peak_rss(process: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.1)


@pytest.mark.slow
def test_twenty_concurrent_clients_for_a_minute_each_get_their_own_results(tmp_path):
    volumes = []
    for index in range(CLIENTS):
        path = tmp_path / f"client{index}.nrrd"
        sitk.WriteImage(ramp_volume() + index * OFFSET, str(path))
        volumes.append(path)
    submit_s: list[float] = []
    status_s: list[float] = []

    with running_server(tmp_path / "home", "--max-jobs", "2") as server:
        stop, peak = threading.Event(), [0]
        watcher = threading.Thread(target=_peak_rss, args=(psutil.Process(server.process.pid), stop, peak))
        watcher.start()

        def one_job(index: int, round_: int) -> tuple[str, float]:
            started = time.perf_counter()
            job = server.client.submit("superres", uploads={"volume": volumes[index]}, params={"method": "linear"})
            submit_s.append(time.perf_counter() - started)
            while True:
                started = time.perf_counter()
                state = server.client.status(job["id"])["state"]
                status_s.append(time.perf_counter() - started)
                if state not in ("queued", "running"):
                    break
                time.sleep(STATUS_POLL_S)
            assert state == "succeeded", server.client.status(job["id"])
            output = server.client.download(job["id"], "volume", tmp_path / f"out{index}-{round_}.nii.gz")
            statistics_filter = sitk.MinimumMaximumImageFilter()
            statistics_filter.Execute(sitk.ReadImage(str(output)))
            return job["id"], statistics_filter.GetMinimum()

        def one_client(index: int) -> list[tuple[int, str, float]]:
            done, round_ = [], 0
            while time.perf_counter() < deadline:
                done.append((index, *one_job(index, round_)))
                round_ += 1
            return done

        began = time.perf_counter()
        deadline = began + DURATION_S
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = [result for client in pool.map(one_client, range(CLIENTS)) for result in client]
        elapsed = time.perf_counter() - began
        stop.set()
        watcher.join()
        listed = [status["id"] for status in server.client.jobs()]

    ids = [job_id for _, job_id, _ in results]
    assert len(results) >= CLIENTS and len(set(ids)) == len(ids)  # every client ran, no job id twice
    assert sorted(listed) == sorted(ids)  # the server knows exactly the jobs the clients submitted
    for index, _, minimum in results:
        assert minimum == pytest.approx(index * OFFSET, abs=1e-3)  # each client got its own volume back
    print(
        f"\n{CLIENTS} clients for {DURATION_S:.0f} s, {len(results)} jobs in {elapsed:.1f} s; server peak RSS {peak[0] / 2**20:.0f} MiB; "
        f"submit p50 {statistics.median(submit_s) * 1000:.0f} ms p95 {_percentile(submit_s, 0.95) * 1000:.0f} ms; "
        f"status p50 {statistics.median(status_s) * 1000:.0f} ms p95 {_percentile(status_s, 0.95) * 1000:.0f} ms "
        f"({len(status_s)} status calls)"
    )

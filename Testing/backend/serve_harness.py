"""A real ``medfuse serve`` in a child process on 127.0.0.1 (an ephemeral port), for the server tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from SlicerMedFuse.serve_client import RemoteError, ServerClient

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    """A port that was free a moment ago (the server binds it right after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunningServer:
    """One server process and a client holding its token."""

    def __init__(self, home: Path, process: subprocess.Popen, port: int) -> None:
        self.home = home
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.token = (home / "server" / "token").read_text().strip()
        self.client = ServerClient(self.url, self.token, timeout_s=30)

    @property
    def jobs_dir(self) -> Path:
        return self.home / "server" / "jobs"


@contextlib.contextmanager
def running_server(home: Path, *options: str) -> Iterator[RunningServer]:
    """Start ``medfuse serve`` with ``$MEDFUSE_HOME=home`` and ``options``; stop it (SIGTERM) at the end."""
    port = free_port()
    environment = {**os.environ, "MEDFUSE_HOME": str(home), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "SlicerMedFuse", "serve", "--port", str(port), "--device", "cpu", *options]
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        server = _wait_until_up(home, process, port)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()


def _wait_until_up(home: Path, process: subprocess.Popen, port: int) -> RunningServer:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.stderr.read()}")
        if (home / "server" / "token").is_file():
            server = RunningServer(home, process, port)
            try:
                server.client.info()
                return server
            except RemoteError:
                pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer within a minute")


def wait_for_state(server: RunningServer, job_id: str, states: set[str], timeout_s: float = 60.0) -> dict:
    """Poll a job until its state is one of ``states``; returns the status."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = server.client.status(job_id)
        if status["state"] in states:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {states}: {status}")

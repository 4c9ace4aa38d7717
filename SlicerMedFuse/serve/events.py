"""The progress stream of a job as Server-Sent Events: each line of its ``events.jsonl`` is one SSE message.

The events are exactly those of ``medfuse run --progress json`` (docs/progress.md), plus an ``error``
event the server adds when the child could not write one (cancelled while queued, crashed, the server
restarted). The last event (``result`` or ``error``) is sent only once the job's status is final.
Every message carries ``id: N`` (its line number), and a client that reconnects with
``Last-Event-ID: N`` gets the events after it. The stream ends after the job's last event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from SlicerMedFuse.serve.jobs import TERMINAL_STATES, JobStore

__all__ = ["job_event_stream"]

_LAST_EVENTS = frozenset({"result", "error"})

_POLL_S = 0.2
_KEEP_ALIVE_S = 15.0  # a comment line now and then so proxies do not close an idle stream


async def job_event_stream(store: JobStore, job_id: str, after: int = 0) -> AsyncIterator[bytes]:
    """SSE messages for job ``job_id`` from event number ``after + 1`` on, until the job has ended.

    Args:
        store: the job store.
        job_id: the job.
        after: number of events the client already has (its ``Last-Event-ID``).

    Yields:
        Encoded SSE messages (``id: N`` and ``data: {json}``), and keep-alive comments.
    """
    path = store.folder(job_id) / "events.jsonl"
    number = 0
    pending = b""
    last_sent = time.monotonic()
    with open(path, "rb") as handle:
        while True:
            # Read the state before the data: once a job is terminal its log is complete, so one more read gets all.
            finished = store.status(job_id)["state"] in TERMINAL_STATES
            pending += handle.read()
            *lines, pending = pending.split(b"\n")
            for index, line in enumerate(lines):
                if not finished and _is_last_event(line):
                    # Held back until the job's status is final, so that a client which got 'result'
                    # can fetch the outputs at once.
                    pending = b"\n".join([*lines[index:], pending])
                    lines = lines[:index]
                    break
                number += 1
                if number > after and line.strip():
                    last_sent = time.monotonic()
                    yield b"id: %d\ndata: %s\n\n" % (number, line.strip())
            if finished and not lines:
                return
            if time.monotonic() - last_sent > _KEEP_ALIVE_S:
                last_sent = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(_POLL_S)


def _is_last_event(line: bytes) -> bool:
    try:
        return json.loads(line).get("event") in _LAST_EVENTS
    except (ValueError, AttributeError):  # not JSON, or not an object: relayed as it is
        return False

"""One progress API for every task: a terminal bar for people, JSON lines for Slicer.

A task receives a :class:`Progress` and calls :meth:`Progress.update` with a fraction of its own
work; :meth:`Progress.span` hands a sub-range to a pipeline stage so stages need not know about
each other. Where the events go is the reporter's business:

* :class:`TerminalProgress` draws one bar on stderr (``medfuse run`` in a terminal),
* :class:`JsonLinesProgress` writes one JSON object per line on stdout (``--progress json``),
  the stream that Slicer's runner parses; the schema is :data:`EVENT_SCHEMA` and docs/progress.md,
* :class:`Progress` itself (the base) drops events, for library use.

In-process callers (Slicer's Python console, notebooks) can cancel by setting the
``cancel_event`` they passed in; the next :meth:`update` then raises :class:`~SlicerMedFuse.errors.Cancelled`.
Out-of-process jobs are cancelled by ending the process tree.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from SlicerMedFuse.errors import Cancelled

__all__ = ["EVENT_SCHEMA", "JsonLinesProgress", "Progress", "TerminalProgress", "make_progress"]

EVENT_SCHEMA_VERSION = 1

#: JSON schema of one line of ``--progress json`` output.
EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "MedFuse progress event",
    "type": "object",
    "required": ["event"],
    "oneOf": [
        {
            "properties": {
                "event": {"const": "start"},
                "version": {"const": EVENT_SCHEMA_VERSION},
                "task": {"type": "string"},
                "time": {"type": "number"},
            },
            "required": ["event", "version", "task", "time"],
        },
        {
            "properties": {
                "event": {"const": "progress"},
                "fraction": {"type": "number", "minimum": 0, "maximum": 1},
                "stage": {"type": "string"},
                "message": {"type": "string"},
            },
            "required": ["event", "fraction", "stage"],
        },
        {
            "properties": {
                "event": {"const": "log"},
                "level": {"enum": ["debug", "info", "warning", "error"]},
                "message": {"type": "string"},
            },
            "required": ["event", "level", "message"],
        },
        {
            "properties": {
                "event": {"const": "result"},
                "outputs": {"type": "object", "additionalProperties": {"type": "string"}},
                "report": {"type": "object"},
            },
            "required": ["event", "outputs", "report"],
        },
        {
            "properties": {
                "event": {"const": "error"},
                "code": {"type": "integer"},
                "name": {"type": "string"},
                "message": {"type": "string"},
            },
            "required": ["event", "code", "name", "message"],
        },
    ],
}


class Progress:
    """Progress reporter base: validates and maps fractions, checks cancellation, drops events.

    Args:
        cancel_event: optional event; once set, the next :meth:`update` raises ``Cancelled``.
    """

    def __init__(self, cancel_event: threading.Event | None = None) -> None:
        self.cancel_event = cancel_event
        # this reporter's 0..1 covers start..end of the root's range
        self._start = 0.0
        self._end = 1.0
        self._root: Progress = self

    # --- what subclasses implement -------------------------------------------------------------
    def emit(self, event: dict[str, Any]) -> None:
        """Deliver one event (see :data:`EVENT_SCHEMA`). The base class drops it."""

    # --- the API tasks use ---------------------------------------------------------------------
    def start(self, task: str) -> None:
        self._root.emit({"event": "start", "version": EVENT_SCHEMA_VERSION, "task": task, "time": time.time()})

    def update(self, fraction: float, stage: str = "", message: str = "") -> None:
        """Report that ``fraction`` (0..1) of this reporter's range is done.

        Raises:
            Cancelled: when the cancel event is set.
        """
        self.check_cancelled()
        fraction = min(max(float(fraction), 0.0), 1.0)
        overall = self._overall(fraction)
        event: dict[str, Any] = {"event": "progress", "fraction": round(overall, 4), "stage": stage}
        if message:
            event["message"] = message
        self._root.emit(event)

    def log(self, message: str, level: str = "info") -> None:
        self._root.emit({"event": "log", "level": level, "message": message})

    def result(self, outputs: Mapping[str, str], report: Mapping[str, Any]) -> None:
        self._root.emit({"event": "result", "outputs": dict(outputs), "report": dict(report)})

    def error(self, code: int, name: str, message: str) -> None:
        self._root.emit({"event": "error", "code": int(code), "name": name, "message": message})

    def check_cancelled(self) -> None:
        root = self._root
        if root.cancel_event is not None and root.cancel_event.is_set():
            raise Cancelled("The job was cancelled; no output was written.")

    def _overall(self, fraction: float) -> float:
        # interpolated, not offset + scale * fraction: a child's 0 and 1 are then bit for bit the
        # parent's values at the span's ends, so rounding never makes progress step backwards
        return self._start * (1.0 - fraction) + self._end * fraction

    def span(self, start: float, end: float) -> Progress:
        """A child reporter whose 0..1 maps onto ``start..end`` of this reporter's range."""
        if not 0.0 <= start <= end <= 1.0:
            raise ValueError(f"span must satisfy 0 <= start <= end <= 1, got {start}, {end}")
        child = Progress.__new__(Progress)
        child.cancel_event = None
        child._root = self._root
        child._start = self._overall(start)
        child._end = self._overall(end)
        return child


class JsonLinesProgress(Progress):
    """Writes each event as one JSON line (default: stdout), flushed at once for live streaming."""

    def __init__(self, stream: IO[str] | None = None, cancel_event: threading.Event | None = None) -> None:
        super().__init__(cancel_event)
        self.stream = stream if stream is not None else sys.stdout
        self._lock = threading.Lock()

    def emit(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"), default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


class TerminalProgress(Progress):
    """A one-line progress bar on stderr; log lines are printed above it."""

    width = 30

    def __init__(self, stream: IO[str] | None = None, cancel_event: threading.Event | None = None) -> None:
        super().__init__(cancel_event)
        self.stream = stream if stream is not None else sys.stderr
        self._last_draw = 0.0
        self._started = time.monotonic()
        self._bar_shown = False

    def emit(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "progress":
            now = time.monotonic()
            if event["fraction"] < 1.0 and now - self._last_draw < 0.1:
                return  # keep the terminal calm on fast loops
            self._last_draw = now
            filled = int(round(self.width * event["fraction"]))
            bar = "#" * filled + "-" * (self.width - filled)
            text = f"\r[{bar}] {100 * event['fraction']:5.1f}% {now - self._started:6.1f}s {event['stage']}"
            self.stream.write(text[:100].ljust(100))
            self._bar_shown = True
        elif kind in ("log", "error"):
            prefix = "" if kind == "log" and event.get("level") == "info" else f"{event.get('level', 'error')}: "
            self._clear_bar()
            self.stream.write(prefix + event["message"] + "\n")
        elif kind == "result":
            self._clear_bar()
        self.stream.flush()

    def _clear_bar(self) -> None:
        if self._bar_shown:
            self.stream.write("\r" + " " * 100 + "\r")
            self._bar_shown = False


def make_progress(kind: str, cancel_event: threading.Event | None = None) -> Progress:
    """A reporter by name: ``"json"``, ``"bar"`` or ``"none"``."""
    if kind == "json":
        return JsonLinesProgress(cancel_event=cancel_event)
    if kind == "bar":
        return TerminalProgress(cancel_event=cancel_event)
    if kind == "none":
        return Progress(cancel_event=cancel_event)
    raise ValueError(f"progress must be 'json', 'bar' or 'none', got {kind!r}")

"""Progress: JSON lines follow the documented schema; spans map fractions; cancel raises."""

from __future__ import annotations

import io
import json
import threading

import jsonschema
import pytest

from SlicerMedFuse.errors import Cancelled
from SlicerMedFuse.progress import EVENT_SCHEMA, JsonLinesProgress, TerminalProgress


def _events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_follow_the_schema():
    stream = io.StringIO()
    progress = JsonLinesProgress(stream)
    progress.start("superres")
    progress.update(0.5, "interpolating", "half way")
    progress.log("a warning", level="warning")
    progress.result({"volume": "/tmp/out.nii.gz"}, {"timings_s": {"total": 1.0}})
    progress.error(3, "InputError", "The image is 2D.")
    events = _events(stream)
    assert [e["event"] for e in events] == ["start", "progress", "log", "result", "error"]
    jsonschema.Draft202012Validator.check_schema(EVENT_SCHEMA)
    for event in events:
        jsonschema.validate(event, EVENT_SCHEMA)


def test_spans_map_onto_the_parent_range():
    stream = io.StringIO()
    progress = JsonLinesProgress(stream)
    stage = progress.span(0.2, 0.6)
    stage.update(0.5, "a")
    stage.span(0.5, 1.0).update(1.0, "b")
    fractions = [e["fraction"] for e in _events(stream)]
    assert fractions == pytest.approx([0.4, 0.6])


def test_cancel_event_stops_the_next_update():
    cancel = threading.Event()
    progress = JsonLinesProgress(io.StringIO(), cancel_event=cancel)
    progress.update(0.1, "x")
    cancel.set()
    with pytest.raises(Cancelled):
        progress.span(0.0, 0.5).update(0.2, "y")


def test_terminal_bar_prints_logs_and_a_bar():
    stream = io.StringIO()
    progress = TerminalProgress(stream)
    progress.update(1.0, "done")
    progress.log("hello")
    text = stream.getvalue()
    assert "100.0%" in text and "hello" in text

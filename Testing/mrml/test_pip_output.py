"""MedFuseLib.pip_output on output captured from real pip runs (pip_captures/)."""

from __future__ import annotations

import pytest
from MedFuseLib.pip_output import PipProgress, explain_pip_failure, planned_installs, python_floor_message

from Testing.mrml.fake_pip import captured_lines, captured_report

FLOOR_39 = (
    "SlicerMedFuse needs Python 3.10 or later (torch 2.13 supports no older Python); this Slicer has "
    "Python 3.9.10: install 3D Slicer 5.10 or later."
)


def test_progress_follows_a_real_install_from_first_download_to_success() -> None:
    progress = PipProgress(total=7)  # the dry-run planned 7 distributions
    fractions, stages = [], []
    for line in captured_lines("install_safetensors_jsonschema.stdout.txt"):
        progress.feed(line)
        fractions.append(progress.fraction)
        stages.append(progress.stage)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert stages[1] == "Downloading package 1 of 7" and "Downloading package 7 of 7" in stages
    assert "Installing 7 packages (keep Slicer open)" in stages and stages[-1] == "Installed"
    assert progress.installing[0] == "typing-extensions" and len(progress.installing) == 7


def test_raw_progress_lines_move_within_one_download() -> None:
    progress = PipProgress(total=2)
    seen = []
    for line in captured_lines("install_monai_raw_progress.stdout.txt"):
        progress.feed(line)
        seen.append((progress.current, round(progress.current_fraction, 3)))
    assert ("monai-1.6.1-py3-none-any.whl (1.7 MB)", 0.156) in seen  # Progress 262144 of 1677458
    assert ("monai-1.6.1-py3-none-any.whl (1.7 MB)", 1.0) in seen
    assert progress.finished and progress.fraction == 1.0


def test_no_torch_for_python_39_names_the_slicer_to_install() -> None:
    lines = captured_lines("dry_run_torch_python39.stderr.txt")
    assert explain_pip_failure(lines, (3, 9, 10)) == FLOOR_39
    newer = explain_pip_failure(lines, (3, 12, 10))  # same text on a new Python: not the floor
    assert newer.startswith("No build of torch==2.13.0 for Python 3.12 on this computer")


def test_a_conflict_with_slicers_numpy_is_one_sentence() -> None:
    lines = captured_lines("dry_run_numpy_conflict.stdout.txt") + captured_lines("dry_run_numpy_conflict.stderr.txt")
    assert explain_pip_failure(lines, (3, 12, 10), {"numpy": "1.22.0"}) == (
        "monai 1.6.1 needs numpy<3.0 and >=1.24, but this Slicer has numpy 1.22.0, which SlicerMedFuse never "
        "replaces (Slicer needs its own): install 3D Slicer 5.10 or later."
    )


def test_network_errors_and_unknown_failures() -> None:
    offline = [
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None)) after connection "
        "broken by 'NewConnectionError(...: Failed to establish a new connection: [Errno -3] Temporary failure in "
        "name resolution')': /simple/torch/",
        "ERROR: Could not find a version that satisfies the requirement torch==2.13.0 (from versions: none)",
        "ERROR: No matching distribution found for torch==2.13.0",
    ]
    assert explain_pip_failure(offline, (3, 12, 10)).startswith(
        "A package index (pypi.org, or download.pytorch.org for torch) could not be reached"
    )
    assert explain_pip_failure(["ERROR: boom"], (3, 12, 10)) == (
        "pip could not install the packages: boom (details in the Python console)."
    )
    assert explain_pip_failure([], (3, 12, 10)).startswith("pip stopped without saying why")


def test_planned_installs_from_a_real_dry_run_report() -> None:
    planned = planned_installs(captured_report())
    assert [(p.name, p.version, p.requested) for p in planned[:2]] == [
        ("safetensors", "0.8.0", True),
        ("jsonschema", "4.26.0", True),
    ]
    assert len(planned) == 7 and not planned[2].requested
    with pytest.raises(ValueError, match="not a pip installation report"):
        planned_installs({"version": "1"})


def test_python_floor() -> None:
    assert python_floor_message((3, 9, 10)) == FLOOR_39
    assert python_floor_message((3, 10, 0)) is None and python_floor_message((3, 12, 10)) is None

"""benchmarks/harness.py and measured_child.py: peak memory read in the child, exit codes, timeouts, crashes."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from harness import LAUNCHER, run_measured  # noqa: E402

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM needs Linux /proc")


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_child_that_allocates_200_mib_reports_at_least_that(tmp_path: Path) -> None:
    script = _script(tmp_path, "allocate.py", "block = bytearray(b'x') * (200 * 1024 * 1024)  # every page written\n")
    result = run_measured((sys.executable, script, []))
    assert result.ok, result.stderr_tail
    assert result.peak_method == "VmHWM"
    assert 200 <= result.peak_rss_mib < 400
    assert result.cpu_s > 0 and result.wall_s > 0


def test_parent_memory_does_not_leak_into_the_child_peak(tmp_path: Path) -> None:
    """The bug the harness fixes: a child's ``ru_maxrss`` starts at its parent's size when forked."""
    script = _script(tmp_path, "small.py", "print('small')\n")
    ballast = bytearray(b"x") * (500 * 1024 * 1024)  # the driver that imported torch and MONAI
    through_launcher = run_measured((sys.executable, script, []))
    through_wait4 = run_measured([sys.executable, str(script)])
    del ballast
    assert through_launcher.ok and through_wait4.ok
    assert through_launcher.peak_rss_mib < 100, "the parent's 500 MiB leaked into the child's peak"
    assert through_wait4.peak_method == "wait4"
    assert through_wait4.peak_rss_mib >= 500  # what wait4 reports for the same small child


def test_exit_code_and_output_come_back(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "exits.py",
        """\
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        sys.exit(3)
        """,
    )
    result = run_measured((sys.executable, script, []))
    assert result.returncode == 3 and not result.ok and not result.timed_out
    assert result.peak_method == "VmHWM" and result.error is None
    assert result.stdout_tail.strip() == "to stdout" and result.stderr_tail.strip() == "to stderr"


def test_crashing_child_still_writes_its_record(tmp_path: Path) -> None:
    script = _script(tmp_path, "crash.py", "raise ValueError('broken input')\n")
    result = run_measured((sys.executable, script, []))
    assert result.returncode == 1
    assert result.peak_method == "VmHWM" and result.peak_rss_mib > 0
    assert "ValueError" in (result.error or "")
    assert "Traceback" in result.stderr_tail and "broken input" in result.stderr_tail


def test_timeout_terminates_the_child_which_still_records(tmp_path: Path) -> None:
    script = _script(tmp_path, "sleeps.py", "import time\ntime.sleep(60)\n")
    result = run_measured((sys.executable, script, []), timeout_s=1.0)
    assert result.timed_out and not result.ok
    assert result.wall_s < 30
    assert result.returncode == 128 + 15  # SIGTERM turned into SystemExit by the launcher
    assert result.peak_method == "VmHWM"


def test_child_killed_by_a_signal_falls_back_to_wait4(tmp_path: Path) -> None:
    script = _script(tmp_path, "killed.py", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    result = run_measured((sys.executable, script, []))
    assert result.returncode == -9
    assert result.peak_method == "wait4"  # no record: the kernel's view is all there is


def test_launcher_runs_a_script_as_python_would(tmp_path: Path) -> None:
    _script(tmp_path, "sibling.py", "VALUE = 42\n")
    script = _script(
        tmp_path,
        "main.py",
        """\
        import json, sys
        import sibling  # found because sys.path[0] is the script's folder
        print(json.dumps({"argv": sys.argv, "value": sibling.VALUE, "name": __name__}))
        """,
    )
    result = run_measured((sys.executable, script, ["--flag", 7]))
    assert result.ok, result.stderr_tail
    printed = json.loads(result.stdout_tail)
    assert printed == {"argv": [str(script), "--flag", "7"], "value": 42, "name": "__main__"}


def test_launcher_runs_a_module_with_dash_m(tmp_path: Path) -> None:
    package = tmp_path / "demo_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    _script(
        package, "__main__.py", "import json, sys\nprint(json.dumps({'argv': sys.argv[1:], 'file': sys.argv[0]}))\n"
    )
    result = run_measured((sys.executable, "-m demo_pkg", ["a", "b"]), cwd=tmp_path)
    assert result.ok, result.stderr_tail
    printed = json.loads(result.stdout_tail)
    assert printed["argv"] == ["a", "b"] and printed["file"].endswith("__main__.py")


def test_log_receives_stdout_and_stderr(tmp_path: Path) -> None:
    script = _script(tmp_path, "talks.py", "import sys\nprint('out')\nprint('err', file=sys.stderr)\n")
    log = tmp_path / "run.log"
    result = run_measured((sys.executable, script, []), log=log)
    assert result.ok
    assert set(log.read_text().split()) == {"out", "err"}


def test_launcher_refuses_a_missing_target(tmp_path: Path) -> None:
    result = run_measured([sys.executable, str(LAUNCHER), "--record", str(tmp_path / "r.json")])
    assert result.returncode == 2 and "usage" in result.stderr_tail


def test_measurement_dict_is_json_ready(tmp_path: Path) -> None:
    script = _script(tmp_path, "quiet.py", "pass\n")
    data = run_measured((sys.executable, script, [])).to_dict()
    assert {"wall_s", "cpu_s", "peak_rss_mib", "peak_method", "load_1min_before", "load_1min_after"} <= set(data)
    assert "stdout_tail" not in data
    json.dumps(data)


def test_launcher_needs_only_the_standard_library_of_python_3_9(tmp_path: Path) -> None:
    """The peers' venvs run it: isolated mode (no project on sys.path) and 3.9 syntax."""
    import ast

    ast.parse(LAUNCHER.read_text(encoding="utf-8"), feature_version=(3, 9))
    record = tmp_path / "record.json"
    script = _script(tmp_path, "quiet.py", "pass\n")
    result = run_measured([sys.executable, "-I", str(LAUNCHER), "--record", str(record), str(script)])
    assert result.ok, result.stderr_tail
    assert json.loads(record.read_text())["peak_method"] == "VmHWM"


def test_non_python_command_is_measured_by_wait4_and_can_time_out() -> None:
    result = run_measured(["sleep", "30"], timeout_s=0.5)
    assert result.timed_out and result.returncode == -15
    assert result.peak_method == "wait4" and result.children_peak_rss_mib is None
    assert result.wall_s < 10


def test_python_command_must_have_three_parts() -> None:
    with pytest.raises(ValueError, match="python, target, args"):
        run_measured((sys.executable, "script.py"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("entry", "value", "cell"),
    [
        ({"peak_rss_mib": 1411.2, "peak_method": "VmHWM"}, 1411.2, "1411"),
        ({"peak_rss_mib": 1622.0, "peak_method": "wait4"}, 1622.0, "1622 (wait4)"),
        ({"peak_rss_mb": 616.8}, 616.8, "617 (legacy)"),  # ru_maxrss KiB / 1024
        ({"peak_rss_gb": 1.5}, 1536.0, "1536 (legacy)"),  # ru_maxrss KiB / 1024**2
        ({"wall_s": 1.0}, None, "-"),
    ],
)
def test_stored_rows_old_and_new_read_in_mib(entry: dict, value: float | None, cell: str) -> None:
    from harness import peak_cell, stored_peak_mib

    assert stored_peak_mib(entry)[0] == value
    assert peak_cell(entry) == cell

"""Run a Python target and record its own peak memory and CPU time at exit (stdlib only, Python >= 3.9).

Usage::

    python benchmarks/measured_child.py --record FILE -m MODULE [args...]
    python benchmarks/measured_child.py --record FILE SCRIPT [args...]

The target runs in this interpreter through :mod:`runpy`, with ``sys.argv`` and ``sys.path[0]`` set
as ``python -m MODULE args`` or ``python SCRIPT args`` would set them. When it ends (normally, by
``SystemExit``, by an exception or by SIGTERM) FILE receives one JSON object:

* ``peak_rss_mib``: this process's peak resident set size (``VmHWM`` of ``/proc/self/status``,
  kB / 1024), with ``peak_method: "VmHWM"``. VmHWM belongs to the address space, which ``exec``
  replaces, so a parent's memory does not leak into it; ``getrusage``'s ``ru_maxrss`` keeps the
  peak from before ``exec`` (Linux carries it across fork + exec) and would. Without /proc (not
  Linux) ``ru_maxrss`` of this process is used and ``peak_method`` says ``"ru_maxrss"``.
* ``cpu_user_s`` / ``cpu_system_s``: ``getrusage(RUSAGE_SELF)``, this process (all its threads).
* ``children_cpu_user_s`` / ``children_cpu_system_s`` / ``children_peak_rss_mib``: the children
  this process waited for (``RUSAGE_CHILDREN``), separately: the memory of grandchildren is not the
  target's own, and ``children_peak_rss_mib`` is the largest one's ``ru_maxrss`` (an upper bound,
  since it carries this process's size at fork).
* ``exit_code`` (what ``python`` would have exited with) and ``error`` (the exception, if any).

It imports nothing from the project, so the peers' own venvs can run it.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import signal
import sys
import time
import traceback

USAGE = "usage: measured_child.py --record FILE (-m MODULE | SCRIPT) [args...]"


def peak_rss_mib() -> tuple[float, str]:
    """This process's peak resident memory in MiB, and how it was read ("VmHWM" or "ru_maxrss")."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0, "VmHWM"
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
    return maxrss / (1024.0**2 if sys.platform == "darwin" else 1024.0), "ru_maxrss"


def _exit_code(stop: SystemExit) -> int:
    """The status ``python`` exits with for this ``SystemExit`` (printing a non-integer message as it does)."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """A timeout's SIGTERM ends the target like an exception, so the record is still written."""
    raise SystemExit(128 + signum)


def _record(path: str, exit_code: int, error: str | None, started: float) -> None:
    peak, method = peak_rss_mib()
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    children_scale = 1024.0**2 if sys.platform == "darwin" else 1024.0
    record = {
        "peak_rss_mib": round(peak, 1),
        "peak_method": method,
        "cpu_user_s": round(own.ru_utime, 3),
        "cpu_system_s": round(own.ru_stime, 3),
        "children_cpu_user_s": round(children.ru_utime, 3),
        "children_cpu_system_s": round(children.ru_stime, 3),
        "children_peak_rss_mib": round(children.ru_maxrss / children_scale, 1),
        "exit_code": exit_code,
        "error": error,
        "process_wall_s": round(time.perf_counter() - started, 3),
        "python": sys.version.split()[0],
    }
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(record, stream)


def main(argv: list[str]) -> int:
    """Run the target named by ``argv`` (this script's arguments) and write its record."""
    if len(argv) < 3 or argv[0] != "--record" or (argv[2] == "-m" and len(argv) < 4):
        print(USAGE, file=sys.stderr)
        return 2
    record, target = argv[1], argv[2:]
    started = time.perf_counter()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    exit_code, error = 0, None
    try:
        if target[0] == "-m":
            sys.argv = [target[1], *target[2:]]  # runpy puts the module's file in argv[0]
            sys.path[0] = os.getcwd()  # as `python -m` does
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(target)
            sys.path[0] = os.path.dirname(os.path.abspath(target[0]))  # as `python SCRIPT` does
            runpy.run_path(target[0], run_name="__main__")
    except SystemExit as stop:
        exit_code = _exit_code(stop)
    except BaseException as failure:  # the target's crash is reported, like python does, then recorded
        traceback.print_exc()
        exit_code, error = (130 if isinstance(failure, KeyboardInterrupt) else 1), repr(failure)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    _record(record, exit_code, error, started)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A stand-in for ``python -m pip install`` in a real child process: replays captured pip output.

``python -m Testing.mrml.replay_pip install [--dry-run --report PATH] ... [--slow SECONDS]``: a dry-run
writes the captured report; an install prints the captured install lines, waiting ``--slow``
seconds after the first download line (a long download to cancel). Used by the install job's
real-process test; never shipped.
"""

from __future__ import annotations

import shutil
import sys
import time

from Testing.mrml.fake_pip import CAPTURES, captured_lines


def main(argv: list[str]) -> int:
    if "--dry-run" in argv:
        shutil.copyfile(CAPTURES / "dry_run_report_safetensors_jsonschema.json", argv[argv.index("--report") + 1])
        return 0
    pause = float(argv[argv.index("--slow") + 1]) if "--slow" in argv else 0.0
    for line in captured_lines("install_safetensors_jsonschema.stdout.txt"):
        print(line, flush=True)
        if line.lstrip().startswith("Downloading"):
            time.sleep(pause)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

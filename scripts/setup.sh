#!/usr/bin/env bash
# Creates ./.venv with Python 3.11 and installs SlicerMedFuse into it.
#   bash scripts/setup.sh          the backend and the `medfuse` command
#   bash scripts/setup.sh dev      plus test tools, slicer-core (headless MRML) and PySide6
# Versions are pinned in pyproject.toml (the one place). Re-running is cheap: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

python_bin=${PYTHON:-python3.11}
if ! command -v "$python_bin" >/dev/null 2>&1; then
  echo "setup: $python_bin was not found; install Python 3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv || {
    echo "setup: could not create a virtual environment; install python3.11-venv (Debian/Ubuntu) and run again." >&2
    exit 2
  }
fi

extras=""
case "${1:-runtime}" in
  runtime) ;;
  dev) extras="[dev]" ;;
  *) echo "setup: unknown profile '$1' (use 'runtime' or 'dev')." >&2; exit 2 ;;
esac

.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
echo "setup: installed $(.venv/bin/python -c 'import SlicerMedFuse; print("SlicerMedFuse", SlicerMedFuse.__version__)') into .venv (${1:-runtime})"

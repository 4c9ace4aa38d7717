#!/usr/bin/env bash
# Sets up the development environment and runs the whole test suite (what CI runs).
#   bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Sets up the backend and runs the demo on a real head CT fetched from Debian's
# invesalius-examples package (falls back to the MNI152 template inside the nilearn wheel).
# Writes ./demo-output: result volumes, report.json and preview.png per step, summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
sample=head-ct
if ! command -v apt-get >/dev/null 2>&1; then
  sample=mni152-t1
elif ! apt-cache show invesalius-examples >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq || true; fi
  apt-cache show invesalius-examples >/dev/null 2>&1 || sample=mni152-t1
fi
exec .venv/bin/medfuse demo --sample "$sample" --output demo-output "$@"

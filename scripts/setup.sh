#!/usr/bin/env bash
# Create .venv and install inferlab with every runtime and the test tools (idempotent), at the versions that
# constraints.txt locks, so every fresh clone installs the same packages (scripts/lock.sh regenerates it).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
# constraints.txt pins torch to the local CPU wheel; a bare `torch` would pull GBs of CUDA packages.
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"

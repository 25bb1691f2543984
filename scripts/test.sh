#!/usr/bin/env bash
# Set up, then lint (ruff), type-check (mypy), check the layering (import-linter contracts in pyproject.toml)
# and run the whole test suite. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python examples/build_models.py >/dev/null   # the example models some tests open (skips what exists)
.venv/bin/ruff check src tests examples benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"

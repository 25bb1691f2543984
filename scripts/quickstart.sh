#!/usr/bin/env bash
# The main job: set up, build the example models, benchmark them on every usable backend in latency and
# throughput modes at batch 1 and 8, store the results in ./inferlab.db and export them under results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python examples/build_models.py
status=0
.venv/bin/inferlab run examples/quickstart.yaml || status=$?
mkdir -p results
.venv/bin/inferlab export latest --format csv -o results/quickstart.csv
.venv/bin/inferlab export latest --format json -o results/quickstart.json
echo "results: ./inferlab.db (inferlab results), results/quickstart.csv, results/quickstart.json"
exit "$status"

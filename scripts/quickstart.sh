#!/usr/bin/env bash
# The main job: set up, build the example models, benchmark them on every usable backend in latency and
# throughput modes at batch 1 and 8, train the digits CNN and check its accuracy with its speed, store the
# results in the per-user results database, and write an HTML report and CSV/JSON exports under results/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python examples/build_models.py
.venv/bin/python examples/train_digits.py
status=0
.venv/bin/inferlab run examples/quickstart.yaml || status=$?
mkdir -p results
.venv/bin/inferlab export latest --format csv -o results/quickstart.csv
.venv/bin/inferlab export latest --format json -o results/quickstart.json
.venv/bin/inferlab report latest -o results/quickstart.html
.venv/bin/inferlab run examples/accuracy.yaml || status=$?
.venv/bin/inferlab export latest --format csv -o results/accuracy.csv
echo "results: $(.venv/bin/python -c "from inferlab.store import default_location; print(default_location())") (inferlab results), results/quickstart.{html,csv,json}, results/accuracy.csv"
exit "$status"

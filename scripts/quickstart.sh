#!/usr/bin/env bash
# The main job: set up, build the example models, benchmark them on every usable backend in latency and
# throughput modes at batch 1 and 8, train the digits CNN and check its accuracy with its speed, train its Keras
# twin and measure it on TensorFlow and the runtimes it converts to (each runtime's speed-up over TensorFlow),
# store the results in the per-user results database, and write HTML reports and CSV/JSON exports under results/.
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
.venv/bin/python examples/train_keras_digits.py
.venv/bin/inferlab bench examples/models/digits_keras.keras --backend tensorflow,litert,onnxruntime,openvino \
  --framework tensorflow --param inference_precision=f32 --time 1.5 || status=$?
.venv/bin/inferlab report latest -o results/tensorflow.html
echo "results: $(.venv/bin/python -c "from inferlab.store import default_location; print(default_location())") (inferlab results), results/quickstart.{html,csv,json}, results/accuracy.csv, results/tensorflow.html"
exit "$status"

#!/usr/bin/env bash
# What ran on the GPU machine (device tool) for benchmarks/RESULTS.md: install the carried wheels and
# inferlab, build the example models, run the CUDA quickstart and a bench, run the GPU tests.
# Usage there: bash benchmarks/device_cuda.sh "$OUT"
set -uo pipefail
source "$(dirname "$0")/device_setup.sh" "${1:-/tmp/out}"
export INFERLAB_DB=$OUT/cuda.db
python3 -m inferlab.cli.main env > "$OUT/env.json"
python3 -m inferlab.cli.main bench examples/models/resnet_s.pt2 --backend torch --device cuda:0 --batch 1,8 \
  --mode latency,throughput --time 2 2>&1 | tee "$OUT/bench.txt"
python3 -m inferlab.cli.main run examples/quickstart_cuda.yaml 2>&1 | tee "$OUT/quickstart_cuda.txt"
python3 -m inferlab.cli.main export latest --format csv -o "$OUT/quickstart_cuda.csv"
python3 -m pytest -q -p no:cacheprovider tests/backends/test_backends.py -k "cuda or torch" -rs 2>&1 | tee "$OUT/gpu_tests.txt"

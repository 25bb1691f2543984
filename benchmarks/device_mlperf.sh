#!/usr/bin/env bash
# What ran on the GPU machine (device tool) for the MLPerf table in benchmarks/RESULTS.md: the four
# scenarios through LoadGen with PyTorch CUDA, the MLPerf-style table, and the LoadGen GPU tests.
# Usage there: bash benchmarks/device_mlperf.sh "$OUT"   (the wheels in .whl/ are carried along)
set -uo pipefail
source "$(dirname "$0")/device_setup.sh" "${1:-/tmp/out}"
export INFERLAB_DB=$OUT/mlperf_cuda.db INFERLAB_ARTIFACTS=$OUT/artifacts
python3 -m inferlab.cli.main run examples/mlperf_cuda.yaml 2>&1 | tee "$OUT/mlperf_cuda.txt"
python3 -m inferlab.cli.main results --mlperf 2>&1 | tee "$OUT/mlperf_table.txt"
python3 -m inferlab.cli.main export latest --mlperf -f csv -o "$OUT/mlperf_cuda.csv"
python3 -m inferlab.cli.main bench examples/models/resnet_s.pt2 --backend torch --device cuda:0 --batch 8 \
  --param dtype=float16 --param cuda_graphs=true --scenario server --find-peak --latency-ms 2 --time 1 \
  2>&1 | tee "$OUT/peak_cuda.txt"
python3 -m pytest -q -p no:cacheprovider tests/measure/test_mlperf_scenarios.py -k cuda -rs 2>&1 | tee "$OUT/gpu_tests.txt"
rm -rf "$OUT/artifacts"/*/*/mlperf_log_trace.json

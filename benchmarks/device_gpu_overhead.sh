#!/usr/bin/env bash
# What ran on the GPU machine (device tool) for the "GPU harness overhead (issue 13)" section of RESULTS.md:
# install the carried wheels and inferlab, run benchmarks/gpu_overhead.py, then the same eager and CUDA-graph
# batch-1 trials through the whole trial process (`inferlab bench`: child process, parent-watch thread,
# monitors sampling from the parent), then the GPU tests of tests/measure.
# Usage there: bash benchmarks/device_gpu_overhead.sh "$OUT" "GRAPHS" [gpu_overhead.py args]
# (GRAPHS: the cuda_graphs values of the bench trials, e.g. "false true"; "" for none)
set -uo pipefail
OUT=${1:-/tmp/out}; GRAPHS=${2-false true}; shift 2 || shift $#
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH COLUMNS=200 PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . >/dev/null
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 benchmarks/gpu_overhead.py --json "$OUT/gpu_overhead.json" "$@" 2>&1 | tee "$OUT/gpu_overhead.txt"
export INFERLAB_DB=/tmp/bench.db
for graphs in $GRAPHS; do
  python3 -m inferlab.cli.main bench torchvision.models:resnet50 --backend torch --device cuda:0 --shape 1x3x224x224 \
    --batch 1 --mode latency,throughput --time 2 -p dtype=float16 -p cuda_graphs=$graphs 2>&1 | grep -E "✓|✗|rror"
  python3 -m inferlab.cli.main export latest -f json -o "$OUT/bench_graphs_$graphs.json"
done | tee "$OUT/bench.txt"
python3 - "$OUT"/bench_graphs_*.json <<'PY' | tee -a "$OUT/bench.txt"
import json, sys
for path in sys.argv[1:]:
    for r in json.load(open(path)).get("results", []):
        lat = r.get("latency") or {}
        print("cuda_graphs", r["spec"]["params"].get("cuda_graphs"), r["spec"]["mode"],
              "FPS", round(r.get("throughput_sps") or 0, 1),
              {k: lat.get(k) for k in ("median_3sigma_ms", "p50_ms", "mean_ms", "p90_ms", "p99_ms", "max_ms", "count")})
PY
python3 -m pytest -q -p no:cacheprovider tests/measure/test_in_flight.py -rs 2>&1 | tail -4

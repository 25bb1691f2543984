#!/usr/bin/env bash
# "Multi-device on this CPU (issue 15)" in RESULTS.md: ResNet-S in throughput mode on one session with all
# threads against inferlab's multi:cpu,cpu (two sessions splitting the cores), on ONNX Runtime and OpenVINO, and
# OpenVINO's native spreading (auto:cpu with CUMULATIVE_THROUGHPUT); 3 repeats, interleaved.
# Usage: bash benchmarks/multi_device.sh [OUT_DIR]   (models: python examples/build_models.py)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/inferlab-multi}
mkdir -p "$OUT"
export INFERLAB_DB=$OUT/multi.db COLUMNS=200
il=".venv/bin/inferlab"
for rep in 1 2 3; do
  $il bench examples/models/resnet_s.onnx --backend onnxruntime,openvino -p inference_precision=f32 \
    --device cpu,multi:cpu,cpu --mode throughput --time 5 | grep "✓\|✗"
  $il bench examples/models/resnet_s.onnx --backend openvino -p inference_precision=f32 \
    -p performance_hint=CUMULATIVE_THROUGHPUT --device auto:cpu --mode throughput --time 5 | grep "✓\|✗"
done | tee "$OUT/multi.txt"
.venv/bin/python - <<'PY' | tee "$OUT/members.txt"
import statistics
from collections import defaultdict
from inferlab.store import Store
s = Store()
fps, members = defaultdict(list), defaultdict(list)
for run in s.runs():
    for r in s.results(run.id):
        key = (r.spec.backend, r.spec.device, r.spec.param_dict.get("performance_hint", ""))
        fps[key].append(r.throughput_sps)
        if r.members:
            members[key].append(" / ".join(f"{m.device}#{m.member} {m.share:.0%} {m.throughput_sps:.0f} sps "
                                           f"p50 {m.latency_median_ms:.2f} ms" for m in r.members))
for key, values in fps.items():
    print(key, "median", round(statistics.median(values), 1), "runs", [round(v) for v in values])
    for line in members.get(key, []):
        print("   ", line)
PY

#!/usr/bin/env bash
# "TensorFlow against the optimised runtimes (issue 17)" in RESULTS.md: the Keras digits CNN
# (examples/train_keras_digits.py, real weights) on TensorFlow (graph, XLA), LiteRT (float; the INT8 model
# `inferlab quantize --backend litert` derives within a 1-point drop), ONNX Runtime and OpenVINO f32 from the
# files inferlab converts, with accuracy on the 540 held-out digits: examples/tensorflow.yaml run 3 times after
# one run that fills the conversion cache (so load times are loads, not conversions), and the medians of the three
# printed per trial: FPS, median latency, load time, peak RSS, top-1, and the speed-up over TensorFlow.
# Usage: bash benchmarks/tensorflow_runtimes.sh [OUT]   (from the repository root, after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/inferlab-tensorflow}
mkdir -p "$OUT"
export INFERLAB_DB=sqlite:///$OUT/tensorflow.db INFERLAB_CACHE=$OUT/cache COLUMNS=200
(cd examples && ../.venv/bin/python train_keras_digits.py | tail -1 &&
  ../.venv/bin/inferlab quantize models/digits_keras.keras --backend litert --dataset digits --split test \
    --max-drop 0.01 --preprocess resize=[32,32] --preprocess scale=0.0625 --preprocess layout=NHWC --time 1 |
    grep "top1\|derived")
(cd examples && ../.venv/bin/inferlab bench models/digits_keras.keras --backend onnxruntime,openvino,litert \
  --time 0.2 >/dev/null)   # the conversions, kept in the cache
for rep in 1 2 3; do
  (cd examples && ../.venv/bin/inferlab run tensorflow.yaml 2>&1 | grep "✓\|✗\|error\|skipped") | tee -a "$OUT/runs.txt" || true
done
.venv/bin/python - <<'PY' | tee "$OUT/medians.md"
import statistics
from collections import defaultdict

from inferlab.report.rows import precision, row_name
from inferlab.report.speedup import speedups
from inferlab.store import Store

store = Store()
runs = [r for r in store.runs() if r.name == "tensorflow-vs-runtimes"][-3:]
parents = {a.hash: a.parent_hash for a in store.artifacts() if a.parent_hash}
trials, ups = defaultdict(list), defaultdict(list)
for run in runs:
    results = store.results(run.id, with_samples=True)
    for r in results:
        if r.status == "ok" and r.throughput_sps:
            trials[row_name(r)].append(r)
    for u in speedups(results, parents):
        ups[row_name(u.result)].append(u)
med = statistics.median
print(f"runs: {', '.join(r.id for r in runs)}\n")
print("| trial | FPS | median ms | load s | peak RSS MB | top-1 | speed-up over TensorFlow (runs) | verdicts |")
print("|---|---:|---:|---:|---:|---:|---|---|")
for name, rs in sorted(trials.items(), key=lambda kv: (kv[1][0].spec.batch, kv[1][0].spec.mode, kv[0])):
    top1 = rs[0].accuracy.metrics.get("top1") if rs[0].accuracy else None
    us = ups.get(name, [])
    speed = (f"{med(u.ratio for u in us):.2f}× ({', '.join(f'{u.ratio:.2f}' for u in us)})" if us else "baseline")
    print(f"| {name} | {med(r.throughput_sps for r in rs):,.0f} | {med(r.latency.median_3sigma_ms for r in rs):.3f} | "
          f"{med(r.load_s for r in rs):.2f} | {med(r.peak_rss_mb for r in rs):.0f} | "
          f"{'' if top1 is None else f'{100 * top1:.2f}%'} | {speed} | "
          f"{'; '.join(sorted({u.verdict.split(' (')[0] for u in us}))} |")
PY

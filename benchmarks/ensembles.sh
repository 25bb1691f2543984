#!/usr/bin/env bash
# "Co-located ensembles on the CPU (issue 15)" in RESULTS.md: the three example models as one ensemble
# (examples/ensemble_examples.yaml) and two digits CNNs trained with different seeds (examples/ensemble.yaml),
# each member alone, one after another and at the same time, in one trial each; each config run 3 times
# (interleaved), and the medians of the three printed per trial.
# Usage: bash benchmarks/ensembles.sh [OUT]   (from the repository root, after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/inferlab-ensembles}
mkdir -p "$OUT"
export INFERLAB_DB=sqlite:///$OUT/ensembles.db COLUMNS=200
.venv/bin/python examples/build_models.py >/dev/null
(cd examples && ../.venv/bin/python train_digits.py >/dev/null &&
  ../.venv/bin/python train_digits.py --seed 1 --out models/digits_cnn_seed1.onnx >/dev/null)
for rep in 1 2 3; do
  for cfg in ensemble_examples.yaml ensemble.yaml; do
    (cd examples && ../.venv/bin/inferlab run "$cfg" 2>&1 | grep "✓\|✗\|error") | tee -a "$OUT/runs.txt"
  done
done
.venv/bin/python - <<'PY' | tee "$OUT/medians.txt"
import statistics
from collections import defaultdict
from inferlab.report.rows import row_name
from inferlab.store import Store

trials = defaultdict(list)
for run in Store().runs():
    for r in Store().results(run.id):
        if r.ensemble is not None and r.status == "ok":
            trials[row_name(r)].append(r)
med = statistics.median
for name, rs in sorted(trials.items()):
    e = [r.ensemble for r in rs]
    acc = rs[0].accuracy.metrics.get("top1") if rs[0].accuracy else None
    print(f"{name} ({len(rs)} runs): at the same time {med(r.throughput_sps for r in rs):.1f} FPS, "
          f"p50 {med(r.latency.p50_ms for r in rs):.2f} ms; one after another "
          f"{med(x.sequential_throughput_sps for x in e):.1f} FPS, p50 {med(x.sequential_latency_median_ms for x in e):.2f} ms; "
          f"gain {med(x.gain for x in e):.2f} (runs {', '.join(f'{x.gain:.2f}' for x in e)})"
          + (f"; top1 {acc:.4f}" if acc is not None else ""))
    for i, m in enumerate(rs[0].members):
        ms = [r.members[i] for r in rs]
        print(f"    {m.model}: p50 {med(x.latency_median_ms for x in ms):.2f} ms, alone "
              f"{med(x.alone_throughput_sps for x in ms):.1f} FPS, p50 {med(x.alone_latency_median_ms for x in ms):.2f} ms;"
              f" interference {med(x.interference for x in ms):.2f}"
              + (f"; top1 {m.accuracy:.4f}" if m.accuracy is not None else ""))
PY

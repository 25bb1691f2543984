#!/usr/bin/env bash
# "Multi-device on the H200 (issue 15)" in RESULTS.md: ResNet-S (.pt2) on PyTorch, fp32, throughput mode, batch 8:
# cuda:0 alone, cpu alone, then inferlab's multi:cuda:0,cpu (requests go to whichever member is free).
# Usage there: bash benchmarks/device_multi.sh "$OUT"
set -uo pipefail
source "$(dirname "$0")/device_setup.sh" "${1:-/tmp/out}"   # wheels, inferlab, the example models
export PYTHONUNBUFFERED=1
export INFERLAB_DB=$OUT/multi.db
nproc | tee "$OUT/cores.txt"
for rep in 1 2; do
  python3 -m inferlab.cli.main bench examples/models/resnet_s.pt2 --backend torch \
    --device cuda:0,cpu,multi:cuda:0,cpu --batch 8 --mode throughput --time 3 2>&1 | grep "✓\|✗\|error"
done | tee "$OUT/multi.txt"
python3 - <<'PY' | tee "$OUT/members.txt"
from inferlab.store import Store
s = Store()
for run in s.runs():
    for r in s.results(run.id):
        print(r.spec.device, r.status, round(r.throughput_sps or 0), "sps", r.in_flight, "in flight", r.reason or "")
        for m in r.members:
            print(f"    {m.device}#{m.member}: {m.requests} requests ({m.share:.1%}), {m.throughput_sps:.0f} sps, "
                  f"p50 {m.latency_median_ms:.2f} ms, p99 {m.latency_p99_ms:.2f} ms")
PY

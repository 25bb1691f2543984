#!/usr/bin/env bash
# "Ensembles and splits on the H200 (issue 15)" in RESULTS.md: the GPU tests of the split and the ensemble, then
# examples/ensemble_cuda.yaml (three torchvision CNNs co-located on cuda:0, alone / one after another / at the
# same time) and examples/hetero_cuda.yaml (ResNet-50 split across cuda:0 and the CPU).
# Usage there: bash benchmarks/device_ensemble.sh "$OUT"   (the wheels in .whl/ are carried along)
set -uo pipefail
source "$(dirname "$0")/device_setup.sh" "${1:-/tmp/out}"   # wheels, inferlab, the example models
export PYTHONUNBUFFERED=1
export INFERLAB_DB=$OUT/ensemble.db
nproc | tee "$OUT/cores.txt"
python3 -m pytest -q -p no:cacheprovider tests/backends/test_split.py tests/backends/test_ensemble_session.py \
  2>&1 | tail -5 | tee "$OUT/tests.txt"
(cd examples && python3 -m inferlab.cli.main run ensemble_cuda.yaml 2>&1 | tail -40) | tee "$OUT/ensemble.txt"
(cd examples && python3 -m inferlab.cli.main run hetero_cuda.yaml 2>&1 | tail -20) | tee "$OUT/hetero.txt"
python3 - <<'PY' | tee "$OUT/figures.txt"
from inferlab.store import Store
s = Store()
for run in s.runs():
    for r in s.results(run.id):
        lat = r.latency.p50_ms if r.latency else None
        print(r.spec.label(), r.status, r.reason or "", f"{r.throughput_sps or 0:.1f} sps, p50 {lat} ms,",
              f"peak GPU {r.peak_gpu_mem_mb} MB")
        for k in ("placement", "layers_per_device", "crossing_mb_per_inference"):
            if k in r.runtime:
                print(f"    {k}: {r.runtime[k]}")
        if r.ensemble:
            e = r.ensemble
            print(f"    one after another: {e.sequential_throughput_sps:.1f} sps, p50 {e.sequential_latency_median_ms:.2f}"
                  f" ms; gain {e.gain:.2f}")
        for m in r.members:
            print(f"    {m.model or m.device}: {m.throughput_sps or 0:.1f} sps, p50 {m.latency_median_ms:.2f} ms; alone "
                  f"{m.alone_throughput_sps or 0:.1f} sps, p50 {m.alone_latency_median_ms or 0:.2f} ms; "
                  f"interference {m.interference or 0:.2f}")
PY

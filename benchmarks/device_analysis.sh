#!/usr/bin/env bash
# What ran on the GPU machine (device tool) for the "Roofline (issue 14)" section of RESULTS.md: ResNet-S (and
# torchvision's ResNet-50 for a point that fills the device) on PyTorch fp16 with `--profile layers,roofline`:
# the H200's roofs measured through torch (an fp16 GEMM and a streaming add), each trial placed under them, and
# the per-layer profile (CUDA kernel times); then the report.
# Usage there: bash benchmarks/device_analysis.sh "$OUT"
set -uo pipefail
source "$(dirname "$0")/device_setup.sh" "${1:-/tmp/out}"   # wheels, inferlab, the example models
export PYTHONUNBUFFERED=1
export INFERLAB_DB=$OUT/analysis.db
nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/clocks.txt"
start=$(date +%s)
python3 -m inferlab.cli.main bench examples/models/resnet_s.pt2 --backend torch --device cuda:0 -p dtype=float16 \
  --batch 1,64,512 --mode throughput --time 2 --profile layers,roofline 2>&1 | tee "$OUT/resnet_s.txt"
python3 -m inferlab.cli.main bench torchvision.models:resnet50 --shape 1x3x224x224 --backend torch --device cuda:0 \
  -p dtype=float16 -p channels_last=true --batch 256 --mode throughput --time 2 --profile roofline 2>&1 \
  | tee "$OUT/resnet50.txt"
python3 -m inferlab.cli.main report latest -o "$OUT/resnet50.md" >/dev/null
python3 -m inferlab.cli.main report "$(python3 -m inferlab.cli.main results --runs | grep -o '2026[0-9-]*-[0-9a-f]*' | tail -2 | head -1)" \
  -o "$OUT/resnet_s.md" >/dev/null
python3 - <<'PY' > "$OUT/roofline.txt"
from inferlab.store import Store
s = Store()
for run in s.runs():
    for r in s.results(run.id):
        if r.roofline:
            f = r.roofline
            print(f"{r.spec.label()}: {r.throughput_sps:.0f} sps; {f.flops_per_sample/1e9:.3f} GFLOP/sample; "
                  f"intensity {f.intensity:.1f}; achieved {f.achieved_flops_per_s/1e12:.2f} TFLOP/s "
                  f"{f.achieved_bytes_per_s/1e9:.0f} GB/s; {f.verdict}: {f.why}")
        if r.layers:
            p = r.layers
            print(f"  layers: {len(p.layers)}, sum {p.total_ms:.3f} ms, profiled wall {p.wall_ms:.3f} ms, "
                  f"trial median {r.latency.median_3sigma_ms if r.latency else float('nan'):.3f} ms")
            for x in sorted(p.layers, key=lambda x: -x.time_ms)[:5]:
                print(f"    {x.name} {x.type} {x.kernel} {x.precision} {x.time_ms:.4f} ms {x.share:.1%}")
for p in s.peaks():
    print(f"peaks {p.backend} {p.device} {p.precision}: {p.flops_per_s/1e12:.1f} TFLOP/s ({p.gemm}), "
          f"{p.bytes_per_s/1e9:.0f} GB/s ({p.stream})")
PY
cat "$OUT/roofline.txt"
echo "total wall time: $(( $(date +%s) - start )) s"

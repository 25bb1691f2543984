#!/usr/bin/env bash
# What ran on the GPU machine (device tool) for the "GPU tuning (issue 13)" section of RESULTS.md: the tuner on
# ResNet-50 with nothing named but the objective (examples/tune_resnet50_cuda*.yaml, time budget overridable),
# then, in the same sitting, the best configurations a knowledgeable user names by hand, measured with the
# same settings, so the tuner's winner is a ratio to them.
# Usage there: bash benchmarks/device_tune.sh "$OUT" throughput|latency BUDGET_S
set -uo pipefail
OUT=${1:-/tmp/out}; GOAL=${2:-throughput}; BUDGET=${3:-600}
mkdir -p "$OUT"
if [ ! -d /tmp/site/inferlab ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --target /tmp/site . >/dev/null
fi
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH COLUMNS=220 PYTHONUNBUFFERED=1
export INFERLAB_DB=$OUT/tune.db
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu_$GOAL.txt"
config=examples/tune_resnet50_cuda.yaml; [ "$GOAL" = latency ] && config=examples/tune_resnet50_cuda_latency.yaml
start=$(date +%s)
python3 -m inferlab.cli.main tune "$config" --time-budget "$BUDGET" 2>&1 | tee "$OUT/tune_$GOAL.txt"
echo "tune wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/tune_$GOAL.txt"
python3 -m inferlab.cli.main report latest -o "$OUT/tune_$GOAL.md" >/dev/null
# by hand: the best (fp16, compile default, CUDA graphs, channels_last) at the batches it names
hand="-p dtype=float16 -p compile=default -p cuda_graphs=true -p channels_last=true"
if [ "$GOAL" = latency ]; then
  python3 -m inferlab.cli.main bench torchvision.models:resnet50 --backend torch --device cuda:0 \
    --shape 1x3x224x224 --batch 1 --mode latency --time 3 $hand 2>&1 | tee "$OUT/hand_$GOAL.txt"
else
  python3 -m inferlab.cli.main bench torchvision.models:resnet50 --backend torch --device cuda:0 \
    --shape 1x3x224x224 --batch 256,512 --mode throughput --time 3 $hand 2>&1 | tee "$OUT/hand_$GOAL.txt"
fi
python3 -m inferlab.cli.main export latest -f csv -o "$OUT/hand_$GOAL.csv"
echo "total wall time: $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# "Co-located ensembles on the CPU (issue 15)" in RESULTS.md: the three example models as one ensemble
# (examples/ensemble_examples.yaml) and two digits CNNs trained with different seeds (examples/ensemble.yaml),
# each member alone, one after another and at the same time, in one trial each.
# Usage: bash benchmarks/ensembles.sh [OUT]   (from the repository root, after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/inferlab-ensembles}
mkdir -p "$OUT"
export INFERLAB_DB=sqlite:///$OUT/ensembles.db COLUMNS=200
.venv/bin/python examples/build_models.py >/dev/null
(cd examples && ../.venv/bin/python train_digits.py >/dev/null &&
  ../.venv/bin/python train_digits.py --seed 1 --out models/digits_cnn_seed1.onnx >/dev/null)
for cfg in ensemble_examples.yaml ensemble.yaml; do
  (cd examples && ../.venv/bin/inferlab run "$cfg" 2>&1 | sed -n '/^ *ensembles:/,$p') | tee "$OUT/${cfg%.yaml}.txt"
done

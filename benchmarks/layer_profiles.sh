#!/usr/bin/env bash
# The per-layer comparisons and the CPU roofline of "Per-layer profiles and the roofline (issue 14)" in
# RESULTS.md: the digits CNN in FP32 against its INT8 derivative on OpenVINO, and ResNet-S on ONNX Runtime
# against OpenVINO, each trial with `--profile layers,roofline`, then `inferlab compare A B --layers`.
# Usage: bash benchmarks/layer_profiles.sh [OUT_DIR]   (models: python examples/build_models.py; the INT8 digits
# model: the quickstart's quantize step, examples/models/inferlab-derived/digits_cnn.int8-aa.xml)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/inferlab-layers}
mkdir -p "$OUT"
export INFERLAB_DB=$OUT/layers.db COLUMNS=200
il=".venv/bin/inferlab"
m=examples/models
$il bench $m/digits_cnn.onnx --backend openvino -p inference_precision=f32 --time 3 --profile layers,roofline \
  | tee "$OUT/digits_fp32.txt"
$il bench $m/inferlab-derived/digits_cnn.int8-aa.xml --backend openvino -p inference_precision=f32 --time 3 \
  --profile layers,roofline | tee "$OUT/digits_int8.txt"
$il bench $m/resnet_s.onnx --backend onnxruntime,openvino -p inference_precision=f32 --time 3 \
  --profile layers,roofline | tee "$OUT/resnet_s.txt"
runs=($($il results --runs | grep -o '20[0-9]\{6\}-[0-9]\{6\}-[0-9a-f]\{4\}' | tail -3))
# `results --runs` lists the oldest first: digits FP32, digits INT8, ResNet-S
$il compare "${runs[0]}:1" "${runs[1]}:1" --layers --top 12 | tee "$OUT/compare_digits.txt"
$il compare "${runs[2]}:1" "${runs[2]}:2" --layers --top 12 | tee "$OUT/compare_resnet_s.txt"
$il report "${runs[0]}" "${runs[1]}" "${runs[2]}" -o "$OUT/layers.md"

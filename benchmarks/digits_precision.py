"""FP32, FP16, INT8 and accuracy-aware INT8 (max drop 0.01 top-1) of the trained digits CNN, on ONNX Runtime
and OpenVINO: each model's top-1 on the held-out digits and its speed (latency at batch 1, FPS at batch 32),
measured by inferlab in one run per backend (trials in their own processes, accuracy on the same sessions).

    python benchmarks/digits_precision.py [--time 3] [--db benchmarks/digits.db]

Prints a Markdown table for benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from inferlab import api
from inferlab.models.artifact import model_size
from inferlab.records.trial import TrialResult

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "models" / "digits_cnn.onnx"
DATA = api.DataOptions({"format": "digits", "split": "test"}, {"resize": [32, 32], "scale": 0.0625})
VARIANTS = [("fp16", None), ("int8", None), ("int8", 0.01)]


def _measure(models: list[str], backend: str, time_s: float, db: str) -> list[TrialResult]:
    exp = api.bench_experiment(models, [backend], ["cpu"], [1, 32], ["latency"], api.exact_params(backend),
                               {"min_duration_s": time_s, "warmup_iterations": 20}, name=f"digits {backend}",
                               data=DATA, with_speed=True)
    return api.execute(exp, db=db).results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time", type=float, default=3.0, help="seconds of latency measurement per trial")
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / "inferlab-digits.db"))
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "inferlab-digits-models")
    args = parser.parse_args()
    if not MODEL.is_file():
        subprocess.run([sys.executable, str(ROOT / "examples" / "train_digits.py")], check=True)
    print("| backend | model | top-1 | drop (pp) | latency b1 median ms | speed-up b1 | FPS b32 | speed-up b32 "
          "| size MB | derivation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for backend in ("onnxruntime", "openvino"):
        derived = [api.derive_model(str(MODEL), backend, DATA, method, max_drop, db=args.db, output_dir=args.out)
                   for method, max_drop in VARIANTS]
        results = _measure([str(MODEL), *[d.path for d in derived]], backend, args.time, args.db)
        by = {(r.spec.model.ref, r.spec.batch): r for r in results}
        base1, base32 = by[(str(MODEL), 1)], by[(str(MODEL), 32)]
        for label, path, lin in [("fp32", str(MODEL), None), *[(d.method, d.path, d) for d in derived]]:
            r1, r32 = by[(path, 1)], by[(path, 32)]
            assert r1.accuracy and r1.latency and r32.throughput_sps and base1.accuracy and base1.latency
            top1 = r1.accuracy.metrics["top1"]
            drop = 100 * (base1.accuracy.metrics["top1"] - top1)
            size = model_size(path) or 0
            note = ""
            if lin is not None and lin.outcome:
                note = f"search drop {100 * lin.outcome['drop']:+.2f} pp, kept in float: {lin.outcome['kept_float']}"
                if lin.outcome.get("fake_quantize_ops") is not None:
                    note += f", {lin.outcome['fake_quantize_ops']} FakeQuantize ops"
            print(f"| {backend} | {label} | {100 * top1:.2f}% | {drop:+.2f} | {r1.latency.median_3sigma_ms:.3f} | "
                  f"{base1.latency.median_3sigma_ms / r1.latency.median_3sigma_ms:.2f}× | {r32.throughput_sps:.0f} | "
                  f"{r32.throughput_sps / (base32.throughput_sps or 1):.2f}× | {size / 1e6:.3f} | {note} |")


if __name__ == "__main__":
    main()

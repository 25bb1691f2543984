"""inferlab vs OpenVINO's own benchmark_app on the same IR with the same settings, side by side.

For each hint (latency, throughput) and each round, runs inferlab (a real trial: child process, the
OpenVINO backend, latency mode for the latency hint and throughput mode for the throughput hint) and then
benchmark_app (subprocess, -ip f32, -infer_precision f32, same shape, same duration), alternating, and
reports the medians over rounds and the ratio inferlab / benchmark_app.

    .venv/bin/python benchmarks/agreement_benchmark_app.py [--model examples/models/resnet_s.xml] [--time 10]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import inferlab

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark_app(model: Path, hint: str, seconds: float, shape: str) -> tuple[float, float]:
    exe = Path(sys.executable).with_name("benchmark_app")
    out = subprocess.run([str(exe), "-m", str(model), "-d", "CPU", "-hint", hint, "-ip", "f32",
                          "-infer_precision", "f32", "-shape", shape, "-t", str(seconds), "-pin", "YES"],
                         capture_output=True, text=True, check=True)
    median = float(re.search(r"Median:\s+([\d.]+) ms", out.stdout).group(1))  # type: ignore[union-attr]
    fps = float(re.search(r"Throughput:\s+([\d.]+) FPS", out.stdout).group(1))  # type: ignore[union-attr]
    return median, fps


def run_inferlab(model: Path, hint: str, seconds: float, db: str) -> tuple[float, float]:
    mode = "latency" if hint == "latency" else "throughput"
    r = inferlab.benchmark(str(model), backend="openvino", batch=1, mode=mode, db=db,
                           measure={"min_duration_s": seconds, "max_duration_s": seconds * 3,
                                    "warmup_iterations": 10},
                           performance_hint=hint.upper(), inference_precision="f32", pinning=True)
    assert r.status == "ok" and r.latency is not None and r.throughput_sps is not None, r.reason
    # benchmark_app's "Median" is the plain median of all requests; compare like with like.
    return r.latency.p50_ms, r.throughput_sps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "models" / "resnet_s.xml")
    parser.add_argument("--time", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", default="[1,3,224,224]")
    args = parser.parse_args()
    db = str(Path(tempfile.mkdtemp()) / "agreement.db")
    rows = []
    for hint in ("latency", "throughput"):
        ours_lat, ours_fps, theirs_lat, theirs_fps = [], [], [], []
        for i in range(args.rounds):
            lat, fps = run_inferlab(args.model, hint, args.time, db)
            ours_lat.append(lat)
            ours_fps.append(fps)
            lat, fps = run_benchmark_app(args.model, hint, args.time, args.shape)
            theirs_lat.append(lat)
            theirs_fps.append(fps)
            print(f"{hint} round {i + 1}: inferlab {ours_lat[-1]:.3f} ms {ours_fps[-1]:.1f} FPS | "
                  f"benchmark_app {theirs_lat[-1]:.3f} ms {theirs_fps[-1]:.1f} FPS", flush=True)
        rows.append((hint, statistics.median(ours_lat), statistics.median(theirs_lat),
                     statistics.median(ours_fps), statistics.median(theirs_fps)))
    print(f"\nmodel {args.model.name}, batch 1, f32, {args.time:g} s per run, median of {args.rounds} rounds")
    print("| hint | inferlab median ms | benchmark_app median ms | ratio | inferlab FPS | benchmark_app FPS | ratio |")
    print("|---|---|---|---|---|---|---|")
    for hint, ol, tl, of, tf in rows:
        print(f"| {hint} | {ol:.3f} | {tl:.3f} | {ol / tl:.3f} | {of:.1f} | {tf:.1f} | {of / tf:.3f} |")


if __name__ == "__main__":
    main()

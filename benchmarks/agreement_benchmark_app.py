"""inferlab vs OpenVINO's own benchmark_app on the same IR with the same settings, side by side.

For each hint (latency, throughput), each round runs, in a rotating order: inferlab with its default
input pool (16 distinct inputs rotated), inferlab with one input (what benchmark_app does: each request
keeps the one random input it was filled with), and benchmark_app (subprocess, -ip f32, -infer_precision
f32, same shape, same duration). inferlab runs as a real trial: a child process, the OpenVINO backend,
latency mode for the latency hint and throughput mode for the throughput hint. Reports the medians over
rounds and the ratios inferlab / benchmark_app.

Two known differences in what is timed: benchmark_app's latency is OpenVINO's internal per-request
figure (C++), inferlab's is perf_counter_ns around the Python call; and rotated inputs are not cache-hot.

    .venv/bin/python benchmarks/agreement_benchmark_app.py [--model examples/models/resnet_s.xml] [--time 6]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import inferlab

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark_app(model: Path, hint: str, seconds: float, shape: str) -> tuple[float, float]:
    exe = Path(sys.executable).with_name("benchmark_app")
    out = subprocess.run([str(exe), "-m", str(model), "-d", "CPU", "-hint", hint, "-ip", "f32",
                          "-infer_precision", "f32", "-shape", shape, "-t", str(round(seconds))],
                         capture_output=True, text=True, check=True)
    median = float(re.search(r"Median:\s+([\d.]+) ms", out.stdout).group(1))  # type: ignore[union-attr]
    fps = float(re.search(r"Throughput:\s+([\d.]+) FPS", out.stdout).group(1))  # type: ignore[union-attr]
    return median, fps


def run_inferlab(model: Path, hint: str, seconds: float, db: str, pool: int) -> tuple[float, float]:
    mode = "latency" if hint == "latency" else "throughput"
    r = inferlab.benchmark(str(model), backend="openvino", batch=1, mode=mode, db=db,
                           measure={"min_duration_s": seconds, "max_duration_s": seconds * 3,
                                    "warmup_iterations": 10, "input_pool": pool},
                           performance_hint=hint.upper(), inference_precision="f32")
    assert r.status == "ok" and r.latency is not None and r.throughput_sps is not None, r.reason
    # benchmark_app's "Median" is the plain median of all requests; compare like with like.
    return r.latency.p50_ms, r.throughput_sps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "models" / "resnet_s.xml")
    parser.add_argument("--time", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shape", default="[1,3,224,224]")
    parser.add_argument("--hints", default="latency,throughput")
    args = parser.parse_args()
    db = str(Path(tempfile.mkdtemp()) / "agreement.db")
    names = ["inferlab (16 inputs rotated)", "inferlab (1 input)", "benchmark_app"]
    rows = []
    for hint in args.hints.split(","):
        runners: list[Callable[[], tuple[float, float]]] = [
            lambda h=hint: run_inferlab(args.model, h, args.time, db, 16),  # type: ignore[misc]
            lambda h=hint: run_inferlab(args.model, h, args.time, db, 1),  # type: ignore[misc]
            lambda h=hint: run_benchmark_app(args.model, h, args.time, args.shape)]  # type: ignore[misc]
        figures: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for i in range(args.rounds):
            for k in range(3):
                j = (i + k) % 3  # rotate who goes first
                figures[names[j]].append(runners[j]())
            print(f"{hint} round {i + 1}: " + " | ".join(
                f"{n} {figures[n][-1][0]:.3f} ms {figures[n][-1][1]:.1f} FPS" for n in names), flush=True)
        med = {n: (statistics.median(v[0] for v in figures[n]), statistics.median(v[1] for v in figures[n]))
               for n in names}
        rows.append((hint, med))
    print(f"\nmodel {args.model.name}, batch 1, f32, {args.time:g} s per run, median of {args.rounds} rounds")
    print("| hint | measured by | median latency ms | ratio to benchmark_app | FPS | ratio to benchmark_app |")
    print("|---|---|---|---|---|---|")
    for hint, med in rows:
        ref_l, ref_f = med["benchmark_app"]
        for n in names:
            lat, fps = med[n]
            print(f"| {hint} | {n} | {lat:.3f} | {lat / ref_l:.3f} | {fps:.1f} | {fps / ref_f:.3f} |")


if __name__ == "__main__":
    main()

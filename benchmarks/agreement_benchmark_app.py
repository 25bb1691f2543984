"""inferlab vs OpenVINO's own benchmark_app on the same IR with the same settings, side by side.

Comparisons (--compare, any of):

latency, throughput: the same hint on both sides. Each round runs, in a rotating order: inferlab with its
default input pool (16 distinct inputs rotated), inferlab with one input (what benchmark_app does: each
request keeps the one random input it was filled with), and benchmark_app (subprocess, -ip f32,
-infer_precision f32, same shape, same duration). inferlab runs latency mode for the latency hint and
throughput mode for the throughput hint, the hint given explicitly.

defaults: throughput at defaults. inferlab's throughput mode with nothing but inference_precision f32 given
(no hint, no number of requests: what the runtime recommends must come by itself), benchmark_app
-hint throughput, and inferlab's latency mode at its defaults (for the throughput/latency ratio), rotating.

inferlab runs as real trials: a child process each, the OpenVINO backend. Reports the medians over rounds
and the ratios to benchmark_app. A model given as ONNX is converted to an IR first (f32 weights), so both
tools read the same file; the input shape is the model's with batch 1 unless --shape says otherwise.

Two known differences in what is timed: benchmark_app's latency is OpenVINO's internal per-request
figure (C++), inferlab's is perf_counter_ns around the Python call; and rotated inputs are not cache-hot.

    .venv/bin/python benchmarks/agreement_benchmark_app.py [--model examples/models/resnet_s.xml] [--time 6]
    .venv/bin/python benchmarks/agreement_benchmark_app.py --compare defaults \\
        --model examples/models/resnet_s.xml,examples/models/mobilenet_s.onnx --time 3 --rounds 3
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import inferlab

ROOT = Path(__file__).resolve().parent.parent
COMPARISONS = ("latency", "throughput", "defaults")


@dataclass
class Figure:
    """One run's result: median latency, throughput and how many requests/streams it used."""

    median_ms: float
    fps: float
    setup: str = ""


@dataclass
class Runner:
    name: str
    run: Callable[[], Figure]
    figures: list[Figure] = field(default_factory=list)

    def median(self) -> tuple[float, float]:
        return (statistics.median(f.median_ms for f in self.figures), statistics.median(f.fps for f in self.figures))

    def setups(self) -> str:
        return ", ".join(sorted({f.setup for f in self.figures if f.setup}))


def as_ir(model: Path, workdir: Path) -> Path:
    """The model as OpenVINO IR: an .xml as it is, anything else converted once with f32 weights."""
    if model.suffix == ".xml":
        return model
    import openvino as ov

    ir = workdir / f"{model.stem}.xml"
    if not ir.is_file():
        ov.save_model(ov.convert_model(str(model)), str(ir), compress_to_fp16=False)
    return ir


def shape_of(ir: Path) -> str:
    """benchmark_app's -shape for batch 1: each input's shape with its dynamic batch set to 1."""
    import openvino as ov

    parts = []
    for inp in ov.Core().read_model(str(ir)).inputs:
        dims = [d.get_length() if d.is_static else -1 for d in inp.get_partial_shape()]
        if dims and dims[0] == -1:
            dims[0] = 1
        if -1 in dims:
            raise SystemExit(f"{ir}: input '{inp.get_any_name()}' has dynamic dimensions besides the batch "
                             f"({dims}); give --shape")
        parts.append(f"{inp.get_any_name()}[{','.join(map(str, dims))}]")
    return ",".join(parts)


def run_benchmark_app(model: Path, hint: str, seconds: float, shape: str) -> Figure:
    exe = Path(sys.executable).with_name("benchmark_app")
    out = subprocess.run([str(exe), "-m", str(model), "-d", "CPU", "-hint", hint, "-ip", "f32",
                          "-infer_precision", "f32", "-shape", shape, "-t", str(round(seconds))],
                         capture_output=True, text=True, check=True)
    median = float(re.search(r"Median:\s+([\d.]+) ms", out.stdout).group(1))  # type: ignore[union-attr]
    fps = float(re.search(r"Throughput:\s+([\d.]+) FPS", out.stdout).group(1))  # type: ignore[union-attr]
    nireq = re.search(r"(\d+) inference requests", out.stdout)
    streams = re.search(r"NUM_STREAMS:\s+(\d+)", out.stdout)
    setup = f"{nireq.group(1) if nireq else '?'} requests, {streams.group(1) if streams else '?'} streams"
    return Figure(median, fps, setup)


def run_inferlab(model: Path, mode: str, seconds: float, db: str, pool: int, shape: str, **knobs: Any) -> Figure:
    from inferlab.cli.inputs import parse_shapes

    # the same shapes benchmark_app gets, as bench's --shape NAME[dims] would give them
    inputs = {name: {"shape": dims} for name, dims in parse_shapes([shape]).items()}
    r = inferlab.benchmark(str(model), backend="openvino", batch=1, mode=mode, db=db,
                           measure={"min_duration_s": seconds, "max_duration_s": seconds * 3,
                                    "warmup_iterations": 10, "input_pool": pool},
                           inputs=inputs, inference_precision="f32", **knobs)
    assert r.status == "ok" and r.latency is not None and r.throughput_sps is not None, r.reason
    eff = r.effective
    setup = (f"{eff.get('in_flight')} requests, {eff.get('num_streams')} streams, "
             f"{eff.get('performance_hint')}")
    # benchmark_app's "Median" is the plain median of all requests; compare like with like.
    return Figure(r.latency.p50_ms, r.throughput_sps, setup)


def runners_for(comparison: str, model: Path, args: argparse.Namespace, db: str, shape: str) -> list[Runner]:
    if comparison == "defaults":
        return [Runner("inferlab throughput mode (defaults)",
                       lambda: run_inferlab(model, "throughput", args.time, db, 16, shape)),
                Runner("benchmark_app -hint throughput",
                       lambda: run_benchmark_app(model, "throughput", args.time, shape)),
                Runner("inferlab latency mode (defaults)",
                       lambda: run_inferlab(model, "latency", args.time, db, 16, shape))]
    hint = comparison
    mode = "latency" if hint == "latency" else "throughput"
    return [Runner("inferlab (16 inputs rotated)",
                   lambda: run_inferlab(model, mode, args.time, db, 16, shape, performance_hint=hint.upper())),
            Runner("inferlab (1 input)",
                   lambda: run_inferlab(model, mode, args.time, db, 1, shape, performance_hint=hint.upper())),
            Runner("benchmark_app", lambda: run_benchmark_app(model, hint, args.time, shape))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=None,
                        help="an IR (.xml) or ONNX model; repeat it or give a comma list (default: resnet_s.xml)")
    parser.add_argument("--time", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shape", default=None, help="benchmark_app -shape (default: the model's, batch 1)")
    parser.add_argument("--compare", "--hints", dest="compare", default=",".join(COMPARISONS),
                        help=f"comma list of {', '.join(COMPARISONS)}")
    args = parser.parse_args()
    models = [Path(m) for arg in (args.model or [str(ROOT / "examples" / "models" / "resnet_s.xml")])
              for m in arg.split(",") if m]
    comparisons = [c.strip() for c in args.compare.split(",") if c.strip()]
    for c in comparisons:
        if c not in COMPARISONS:
            raise SystemExit(f"--compare: '{c}' is not one of {', '.join(COMPARISONS)}")
    workdir = Path(tempfile.mkdtemp())
    db = str(workdir / "agreement.db")
    rows: list[tuple[str, str, list[Runner]]] = []
    for model in models:
        ir = as_ir(model, workdir)
        shape = args.shape or shape_of(ir)
        for comparison in comparisons:
            runners = runners_for(comparison, ir, args, db, shape)
            for i in range(args.rounds):
                for k in range(len(runners)):
                    runners[(i + k) % len(runners)].figures.append(runners[(i + k) % len(runners)].run())
                print(f"{model.name} {comparison} round {i + 1}: " + " | ".join(
                    f"{r.name} {r.figures[-1].median_ms:.3f} ms {r.figures[-1].fps:.1f} FPS" for r in runners),
                    flush=True)
            rows.append((model.name, comparison, runners))
    print(f"\nbatch 1, f32, {args.time:g} s per run, median of {args.rounds} rounds, order rotated per round")
    print("| model | comparison | measured by | setup | median latency ms | ratio to benchmark_app | FPS "
          "| ratio to benchmark_app |")
    print("|---|---|---|---|---|---|---|---|")
    for name, comparison, runners in rows:
        ref = next(r for r in runners if r.name.startswith("benchmark_app"))
        ref_l, ref_f = ref.median()
        for r in runners:
            lat, fps = r.median()
            print(f"| {name} | {comparison} | {r.name} | {r.setups()} | {lat:.3f} | {lat / ref_l:.3f} | {fps:.1f} "
                  f"| {fps / ref_f:.3f} |")
        if comparison == "defaults":
            tp, lm = runners[0].median()[1], runners[2].median()[1]
            per_round = [a.fps / b.fps for a, b in zip(runners[0].figures, runners[2].figures, strict=True)]
            print(f"| {name} | defaults | inferlab throughput / latency mode | | | | {tp / lm:.3f} "
                  f"(rounds {min(per_round):.2f}–{max(per_round):.2f}) | |")


if __name__ == "__main__":
    main()

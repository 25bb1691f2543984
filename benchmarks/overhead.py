"""inferlab's latency mode against a bare perf_counter loop around the same runtime session.

For each model, alternates (AB then BA, --rounds times) a bare loop -- `t0 = perf_counter_ns(); sess.run(...);
t1 = perf_counter_ns()` around the ONNX Runtime InferenceSession inferlab loaded -- with inferlab's
latency driver on that session, each for --time seconds, in one process. Reports the medians over
rounds of (a) the median latency each reports and (b) wall time per inference (the loop's own cost), the
overhead in microseconds and percent, and the null backend's per-request cost (inferlab with no model).

    .venv/bin/python benchmarks/overhead.py [--time 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from inferlab import backends
from inferlab.measure.budget import QuietEvents
from inferlab.measure.latency import measure_latency
from inferlab.models import resolve
from inferlab.models.inputs import make_pool, merge
from inferlab.models.introspect import declared_inputs
from inferlab.records.trial import MeasureSettings

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "examples" / "models"


def bare_loop(sess, feeds: list[dict[str, np.ndarray]], seconds: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    n = len(feeds)
    clock = time.perf_counter_ns
    start = clock()
    end = start + int(seconds * 1e9)
    i = 0
    t1 = start
    while t1 < end:
        t0 = clock()
        sess.run(None, feeds[i % n])
        t1 = clock()
        samples.append(t1 - t0)
        i += 1
    return float(np.median(samples)) / 1e3, (t1 - start) / i / 1e3


def inferlab_loop(session, prepared: list[object], seconds: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    settings = MeasureSettings(warmup_iterations=0, min_iterations=1, min_duration_s=seconds,
                               max_duration_s=seconds * 2)
    m = measure_latency(session, prepared, settings, 1, QuietEvents())
    return float(np.median(m.latencies_ns)) / 1e3, m.window_ns / m.requests / 1e3


def study(name: str, model: Path, batch: int, seconds: float, rounds: int) -> dict[str, float]:
    art = resolve(name, str(model))
    backend = backends.get("onnxruntime")
    inputs = merge(declared_inputs(art) or (), (), batch, name)
    session = backend.load(art, "cpu", backend.check_params("cpu", {}, "params"), inputs)
    pool = make_pool(inputs, 16, 0)
    prepared = [session.prepare(f) for f in pool]
    raw = session._sess  # the very InferenceSession inferlab times
    for f in pool[:20]:
        raw.run(None, f)
    bare_med, bare_wall, ours_med, ours_wall = [], [], [], []
    for i in range(rounds):
        # alternate the order each round so neither side always runs on a warmer (or busier) machine
        order = (bare_loop, inferlab_loop) if i % 2 == 0 else (inferlab_loop, bare_loop)
        for fn in order:
            if fn is bare_loop:
                m, w = bare_loop(raw, pool, seconds)
                bare_med.append(m)
                bare_wall.append(w)
            else:
                m, w = inferlab_loop(session, prepared, seconds)
                ours_med.append(m)
                ours_wall.append(w)
    session.close()
    d_med = [o - b for o, b in zip(ours_med, bare_med, strict=True)]
    d_wall = [o - b for o, b in zip(ours_wall, bare_wall, strict=True)]
    q = statistics.quantiles(d_wall, n=4)
    return {"bare_median_us": statistics.median(bare_med), "inferlab_median_us": statistics.median(ours_med),
            "bare_wall_us": statistics.median(bare_wall), "inferlab_wall_us": statistics.median(ours_wall),
            "d_median_us": statistics.median(d_med), "d_wall_us": statistics.median(d_wall),
            "d_wall_q1_us": q[0], "d_wall_q3_us": q[2]}


def null_cost(seconds: float) -> float:
    art = resolve("tiny", str(MODELS / "mobilenet_s.onnx"))
    inputs = merge(declared_inputs(art) or (), (), 1, "null")
    null = backends.get("null").load(art, "cpu", {}, inputs)
    prepared = [null.prepare(f) for f in make_pool(inputs, 4, 0)]
    return inferlab_loop(null, prepared, seconds)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    cases = [("~1 ms: mobilenet_s b1", MODELS / "mobilenet_s.onnx", 1),
             ("~20 ms: resnet_s b12", MODELS / "resnet_s.onnx", 12)]
    print(f"null backend: {null_cost(args.time):.2f} µs per request through inferlab's latency loop")
    print(f"\npaired rounds: {args.rounds} x {args.time:g} s per side; Δ = median over rounds of (inferlab - bare)")
    print("| model | bare median µs | inferlab median µs | Δ median µs (%) | bare wall/inf µs "
          "| inferlab wall/inf µs | Δ wall µs (%) | Δ wall IQR µs |")
    print("|---|---|---|---|---|---|---|---|")
    for label, path, batch in cases:
        r = study(label, path, batch, args.time, args.rounds)
        dm, dw = r["d_median_us"], r["d_wall_us"]
        print(f"| {label} | {r['bare_median_us']:.1f} | {r['inferlab_median_us']:.1f} | "
              f"{dm:+.2f} ({100 * dm / r['bare_median_us']:+.2f}%) | {r['bare_wall_us']:.1f} | "
              f"{r['inferlab_wall_us']:.1f} | {dw:+.2f} ({100 * dw / r['bare_wall_us']:+.2f}%) | "
              f"{r['d_wall_q1_us']:+.1f} .. {r['d_wall_q3_us']:+.1f} |", flush=True)


if __name__ == "__main__":
    main()

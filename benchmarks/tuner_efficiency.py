"""How close the tuner gets to the best configuration, and with how few trials.

A space of 48 configurations of one example model (mobilenet_s, throughput mode): ONNX Runtime's
intra-op threads × spinning and OpenVINO's performance hint × inference threads, each at batch 1..32. The
full grid is measured once (optuna's brute-force sampler) as the ground truth; then the tuner (TPE, a
budget of max_trials, re-measurement of its two leaders included) runs with several seeds. For each seed
we report the grid's own measurement of the configuration the tuner chose, as a fraction of the grid's
best, and how many trials the tuner measured. Every trial is a real, isolated measurement.

    python benchmarks/tuner_efficiency.py [--seeds 3] [--budget 12] [--time 1.0] [--db /tmp/tuner.db]

Prints a Markdown table for benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from inferlab import api
from inferlab.config import loader

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "models" / "mobilenet_s.onnx"


def experiment(time_s: float, tune: dict[str, Any]) -> Any:
    return loader.from_data({
        "name": "tuner-efficiency",
        "models": [{"path": str(MODEL)}],
        "backends": [
            {"name": "onnxruntime", "params": {"intra_op_threads": [1, 2], "spinning": [True, False],
                                               "execution_mode": "sequential", "inter_op_threads": 0,
                                               "graph_optimization_level": "all", "in_flight": 0, "cpus": 0}},
            {"name": "openvino", "params": {"performance_hint": ["LATENCY", "THROUGHPUT"],
                                            "inference_threads": [1, 2], "num_streams": 0, "num_requests": 0,
                                            "pinning": True, "cpus": 0, "inference_precision": "f32"}},
        ],
        "devices": ["cpu"], "batch": [1, 2, 4, 8, 16, 32], "mode": "throughput",
        "measure": {"min_duration_s": time_s, "min_iterations": 20, "warmup_iterations": 5},
        "tune": tune,
    }, "tuner_efficiency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=12, help="the tuner's max_trials (25%% of 48 is 12)")
    parser.add_argument("--time", type=float, default=1.0, help="seconds of measurement per trial")
    parser.add_argument("--db", default=str(Path(tempfile.gettempdir()) / f"inferlab-tuner-{int(time.time())}.db"))
    args = parser.parse_args()
    if not MODEL.is_file():
        raise SystemExit(f"{MODEL} is missing; run `python examples/build_models.py` first")

    t0 = time.monotonic()
    # baseline off: the budget counts search trials and re-measurements only, as when the figures were recorded
    grid = api.tune(experiment(args.time, {"sampler": "grid", "max_trials": 48, "confirm": 0, "patience": None,
                                           "baseline": False}),
                    db=args.db)
    grid_s = time.monotonic() - t0
    truth = {r.point.key(): r.values[0] for r in grid.outcome.records if r.point and r.state == "complete"}
    size = grid.space.size()
    best_key = max(truth, key=lambda k: truth[k])
    best = truth[best_key]
    print(f"grid: {len(truth)} of {size} configurations measured in {grid_s:.0f} s (run {grid.id}); "
          f"best {best:.1f} samples/s: {best_key}")
    ranked = sorted(truth.values(), reverse=True)
    print(f"grid: the 2nd and 5th best are {ranked[1] / best:.3f} and {ranked[4] / best:.3f} of the best")

    rows = []
    for seed in range(args.seeds):
        t0 = time.monotonic()
        run = api.tune(experiment(args.time, {"sampler": "tpe", "max_trials": args.budget, "confirm": 2,
                                              "patience": 6, "seed": seed, "baseline": False}), db=args.db)
        took = time.monotonic() - t0
        w = run.outcome.winner
        assert w is not None and w.point is not None
        chosen = truth[w.point.key()]
        rows.append((seed, run.id, run.outcome.measured, chosen / best, w.point.key(), run.outcome.winner_values[0],
                     took, run.outcome.stop_reason))
        print(f"seed {seed}: {run.outcome.measured} trials, chose {w.point.key()}: grid value {chosen:.1f} = "
              f"{chosen / best:.3f} of the best ({took:.0f} s; {run.outcome.stop_reason})")

    print()
    print("| seed | run | trials measured | share of the grid's trials | grid value of the choice / grid best | "
          "tuner's own median | time |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for seed, rid, n, frac, _key, own, took, _stop in rows:
        print(f"| {seed} | {rid} | {n} | {n / size:.0%} | {frac:.3f} | {own:.1f} | {took:.0f} s |")
    print(f"| **median** | | **{statistics.median(r[2] for r in rows):.0f}** | "
          f"**{statistics.median(r[2] for r in rows) / size:.0%}** | **{statistics.median(r[3] for r in rows):.3f}** "
          f"| | |")
    print(f"\ngrid: {size} trials, {grid_s:.0f} s, best {best:.1f} samples/s ({best_key})")


if __name__ == "__main__":
    main()

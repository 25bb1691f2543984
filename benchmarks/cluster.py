"""The Ray executor against the local one: wall time of the quickstart grid on this host, on one cluster
node and on two (nodes in network namespaces of this machine, started here), and the per-trial scheduling
cost of each path with the null backend (a session that returns at once, so a trial is all overhead).

    .venv/bin/python benchmarks/cluster.py [--rounds 1] [--min-duration 0.5] [--null-trials 12]

Needs root (network namespaces). The grid is examples/quickstart.yaml with a shorter measurement
(--min-duration, min 10 iterations) so that three passes fit; build the models first
(examples/build_models.py). On a 2-core machine two nodes share the same two cores: the grid cannot
run 2x faster there, only its waiting (loads, process starts) overlaps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cluster.netns import _reset_ray_auth_cache, start_cluster  # noqa: E402

from inferlab import api  # noqa: E402


def _grid(tmp: Path, min_duration: float) -> Path:
    exp = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())
    for m in exp["models"]:
        m["path"] = str(ROOT / "examples" / m["path"])
        m["alternates"] = [str(ROOT / "examples" / a) for a in m.get("alternates", [])]
    exp["measure"].update({"min_duration_s": min_duration, "min_iterations": 10, "warmup_iterations": 2})
    path = tmp / "grid.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def _null(tmp: Path, trials: int) -> Path:
    model = str(ROOT / "examples/models/resnet_s.onnx")
    exp: dict[str, Any] = {"name": "null", "models": [{"name": "m", "path": model}],
                           "backends": [{"name": "null"}], "batch": list(range(1, trials + 1)), "mode": "latency",
                           "measure": {"warmup_iterations": 0, "min_iterations": 1, "min_duration_s": 0.0,
                                       "max_duration_s": 1}}
    path = tmp / "null.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def _timed(cfg: Path, db: Path, cluster: str | None) -> tuple[float, int]:
    t0 = time.perf_counter()
    run = api.run(cfg, db=str(db), cluster=cluster)
    return time.perf_counter() - t0, sum(r.status == "ok" for r in run.results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--min-duration", type=float, default=0.5)
    ap.add_argument("--null-trials", type=int, default=12)
    args = ap.parse_args()
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="ilb-", dir="/tmp"))
    grid, null = _grid(tmp, args.min_duration), _null(tmp, args.null_trials)
    rows: dict[str, list[float]] = {}

    def record(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)
        print(f"{name}: {value:.3f}", flush=True)

    for r in range(args.rounds):
        record("null local", _timed(null, tmp / f"nl{r}.db", None)[0] / args.null_trials)
        record("grid local", _timed(grid, tmp / f"l{r}.db", None)[0])
    for workers in (1, 2):
        with start_cluster(tmp / f"c{workers}", workers=workers) as cluster:
            os.environ.update(cluster.driver_env)
            _reset_ray_auth_cache()
            try:
                _timed(null, tmp / f"warm{workers}.db", cluster.address)  # joins and ships inferlab once
                for r in range(args.rounds):
                    record(f"null {workers} node(s)",
                           _timed(null, tmp / f"n{workers}-{r}.db", cluster.address)[0] / args.null_trials)
                    record(f"grid {workers} node(s)", _timed(grid, tmp / f"g{workers}-{r}.db", cluster.address)[0])
            finally:
                ray.shutdown()
                _reset_ray_auth_cache()
    base = statistics.median(rows["grid local"])
    print("\n| path | median | vs local |\n| --- | --- | --- |")
    for name, values in rows.items():
        m = statistics.median(values)
        ref = base if name.startswith("grid") else statistics.median(rows["null local"])
        unit = "s per grid" if name.startswith("grid") else "s per trial"
        print(f"| {name} | {m:.2f} {unit} | {m / ref:.2f}x |")


if __name__ == "__main__":
    main()

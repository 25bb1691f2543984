"""The fixed cost of a trial (issue 13): where the seconds of `inferlab bench` go, beside benchmark_app.

Runs, side by side, alternating the order every round:

- `inferlab bench MODEL --backend openvino --time T` (the console script, as a user runs it; a throwaway
  database, artifacts folder and host lock under a temp dir, so no other user's trial is waited for);
- `benchmark_app -m MODEL -hint latency -t T -shape [1,3,224,224]` (OpenVINO's own, from the same venv);
- the same `inferlab bench` under a probe: the very CLI entry point, with timestamps taken at the seams of a
  trial (planning, store open, environment fingerprint, trial start, the child's phase messages, the result
  stored, the report printed), from which the phase table is made.

Prints the whole-process wall times (medians over rounds) and their ratio, and where inferlab's seconds go
(median of each phase over the probed runs). `--src DIR` measures another checkout's `src` with this venv
(e.g. a `git worktree` of an older commit), to compare before and after.

    .venv/bin/python benchmarks/fixed_cost.py [--rounds 3] [--time 3] [--model examples/models/resnet_s.xml]
    .venv/bin/python benchmarks/fixed_cost.py --src /tmp/fc-before/src      # the code of another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Run as `python -c PROBE OUT ARGS...`: the CLI entry point with timestamps (time.monotonic, one clock for
# every process of the host) at the seams of a run. Patches are put in as each module is first imported, so
# the probe imports nothing the command would not, and works on older and newer code alike.
PROBE = r'''
import sys, time
MARKS = [("start", time.monotonic())]
import functools, importlib.abc, json

def mark(name):
    MARKS.append((name, time.monotonic()))

def around(owner, attr, name):
    f = getattr(owner, attr, None)
    if f is None:
        return
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        mark(name + ">")
        try:
            return f(*args, **kwargs)
        finally:
            mark(name + "<")
    setattr(owner, attr, wrapper)

def on_message(cls):
    f = cls._handle
    def handle(self, msg, outcome):
        mark("child:" + (msg.get("name") if msg.get("t") == "phase" else str(msg.get("t"))))
        return f(self, msg, outcome)
    cls._handle = handle

def patch_store(m):
    for attr, name in (("__init__", "store"), ("ensure_environment", "ensure_env"), ("create_run", "create"),
                       ("save_result", "save"), ("results", "readback"), ("finish_run", "finish")):
        around(m.Store, attr, name)

PATCHES = {
    "inferlab.config.plan": lambda m: around(m, "plan", "plan"),
    "inferlab.store.repository": patch_store,
    "inferlab.execute.environment": lambda m: around(m, "collect", "env"),
    "inferlab.execute.trial_process": lambda m: (around(m.TrialProcess, "run", "trial"), on_message(m.TrialProcess)),
    "inferlab.api.runs": lambda m: around(m, "execute", "execute"),
}

class Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            PATCHES[name](module)
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Hook())
out, args = sys.argv[1], sys.argv[2:]
from inferlab.cli.main import main
mark("imported")
rc = main(args)
mark("main<")
with open(out, "w") as f:
    json.dump(MARKS, f)
sys.exit(rc)
'''

# (phase, from mark, to mark): the table's rows, in the order they happen. "spawned" is taken outside the
# process just before it is started, "exited" when it has been reaped.
PHASES = [
    ("python start (parent)", "spawned", "start"),
    ("CLI module imports (parent)", "start", "imported"),
    ("command line → experiment (+ lazy imports)", "imported", "plan>"),
    ("planning (resolve, devices, inputs)", "plan>", "plan<"),
    ("store open (+ migrations)", "store>", "store<"),
    ("environment fingerprint", "env>", "env<"),
    ("trial start → child's first phase (spawn, child imports, model read)", "trial>", "child:load"),
    ("load (runtime import + compile)", "child:load", "child:warmup"),
    ("first inference + warm-up", "child:warmup", "child:measure"),
    ("measured window", "child:measure", "child:measured"),
    ("statistics + result message", "child:measured", "child:result"),
    ("child exit", "child:result", "trial<"),
    ("store result", "save>", "save<"),
    ("read back, finish, print the table", "save<", "main<"),
    ("interpreter exit (parent)", "main<", "exited"),
]


def _env(src: Path | None, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(INFERLAB_DB=str(tmp / "bench.db"), INFERLAB_ARTIFACTS=str(tmp / "artifacts"),
               INFERLAB_HOST_LOCK=str(tmp / "host.lock"), PYTHONUNBUFFERED="1")
    if src is not None:
        env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Runs `cmd` with its output discarded; returns (start, end, wall) on the monotonic clock."""
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    t1 = time.monotonic()
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-2000:]}")
    return t0, t1, t1 - t0


def phases(marks: list[tuple[str, float]]) -> dict[str, float]:
    """Seconds of each phase of one probed run (a phase whose marks are missing is left out)."""
    first: dict[str, float] = {}
    for name, t in marks:
        first.setdefault(name, t)
    return {label: first[b] - first[a] for label, a, b in PHASES if a in first and b in first}


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def import_times(env: dict[str, str], repeats: int) -> dict[str, float]:
    """Whole-process seconds of a fresh interpreter that only imports what each side starts with."""
    cases = {"python -c pass": "pass", "import inferlab.cli.main (parent)": "import inferlab.cli.main",
             "import inferlab.execute.runner (child)": "import inferlab.execute.runner",
             "import openvino": "import openvino"}
    out: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for label, code in cases.items():
            out[label].append(_timed([sys.executable, "-c", code], env)[2])
    return {k: _median(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="examples/models/resnet_s.xml")
    ap.add_argument("--time", type=float, default=3.0, help="measurement seconds, both tools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shape", default="[1,3,224,224]", help="benchmark_app's -shape")
    ap.add_argument("--src", type=Path, help="measure this checkout's src/ (PYTHONPATH) with this venv")
    ap.add_argument("--json", type=Path, help="write the raw timings here")
    a = ap.parse_args()
    benchmark_app = BIN / "benchmark_app"
    inferlab = BIN / "inferlab"
    if not benchmark_app.exists():
        sys.exit(f"{benchmark_app} is missing: install openvino in this venv (it ships benchmark_app)")
    if not (ROOT / a.model).exists():
        sys.exit(f"{a.model} is missing: build it with `.venv/bin/python examples/build_models.py`")
    t = f"{a.time:g}"
    bench_args = ["bench", a.model, "--backend", "openvino", "--time", t]
    sides = {
        "inferlab": lambda env, tmp: _timed([str(inferlab), *bench_args, "--db", str(tmp / "bench.db")], env),
        "benchmark_app": lambda env, tmp: _timed([str(benchmark_app), "-m", a.model, "-hint", "latency", "-t", t,
                                                  "-shape", a.shape], env),
        "inferlab (probed)": None,
    }
    walls: dict[str, list[float]] = {k: [] for k in sides}
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="inferlab-fixed-cost-") as tmp_name:
        tmp = Path(tmp_name)
        env = _env(a.src, tmp)
        _timed([str(inferlab), *bench_args, "--time", "0.5"], env)  # the database exists, file caches are warm
        order = list(sides)
        for r in range(a.rounds):
            for side in order[r % len(order):] + order[:r % len(order)]:
                if side == "inferlab (probed)":
                    out = tmp / f"marks-{r}.json"
                    t0, t1, wall = _timed([sys.executable, "-c", PROBE, str(out), *bench_args], env)
                    marks = [("spawned", t0), *json.loads(out.read_text()), ("exited", t1)]
                    runs.append(phases(marks))
                else:
                    wall = sides[side](env, tmp)[2]  # type: ignore[misc]
                walls[side].append(wall)
                print(f"round {r + 1}/{a.rounds}: {side:18s} {wall:6.2f} s", file=sys.stderr, flush=True)
        imports = import_times(env, a.rounds)

    med = {k: _median(v) for k, v in walls.items()}
    ratios = [i / b for i, b in zip(walls["inferlab"], walls["benchmark_app"], strict=True)]
    print(f"\n`inferlab {' '.join(bench_args)}` vs `benchmark_app -m {a.model} -hint latency -t {t} -shape {a.shape}`"
          f" ({a.rounds} rounds, alternating; code: {a.src or 'this checkout'})\n")
    print("| process | median wall s | rounds |\n|---|---|---|")
    for k, v in walls.items():
        print(f"| {k} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |")
    print(f"\nwhole-process ratio inferlab / benchmark_app: **{med['inferlab'] / med['benchmark_app']:.2f}x** "
          f"(ratio of medians; median of per-round ratios {_median(ratios):.2f}x)\n")
    print("| phase (probed runs) | median s | share |\n|---|---|---|")
    total = med["inferlab (probed)"]
    accounted = 0.0
    for label, _, _ in PHASES:
        xs = [p[label] for p in runs if label in p]
        if xs:
            accounted += _median(xs)
            print(f"| {label} | {_median(xs):.3f} | {_median(xs) / total:.0%} |")
        else:
            print(f"| {label} | — | |")
    print(f"| other (between the marks above) | {total - accounted:.3f} | {(total - accounted) / total:.0%} |")
    print(f"| **whole process** | **{total:.3f}** | |")
    print("\n| fresh interpreter (median s) | s |\n|---|---|")
    for k, v in imports.items():
        print(f"| {k} | {v:.3f} |")
    if a.json:
        a.json.write_text(json.dumps({"walls": walls, "phases": runs, "imports": imports}, indent=2))


if __name__ == "__main__":
    main()

"""The fixed cost of a trial (issue 13): where the seconds of `inferlab bench` go, beside benchmark_app.

Runs, side by side, alternating the order every round:

- `inferlab bench MODEL --backend openvino --time T` (the console script, as a user runs it; a throwaway
  database, artifacts folder and host lock under a temp dir, so no other user's trial is waited for);
- `benchmark_app -m MODEL -hint latency -t T -shape [1,3,224,224]` (OpenVINO's own, from the same venv);
- the same `inferlab bench` under a probe: the very CLI entry point, with timestamps taken at the seams of a
  trial (planning, store open, environment fingerprint, trial start, the child's phase messages, the result
  stored, the report printed), from which the phase table is made.

Prints the whole-process wall times (medians over rounds) and their ratio, and where inferlab's seconds go
(median of each phase over the probed runs). `--src NAME=DIR` (repeatable) measures a checkout's `src` with
this venv (e.g. a `git worktree` of an older commit); several alternate in every round, so that before and
after are compared side by side too.

    .venv/bin/python benchmarks/fixed_cost.py [--rounds 3] [--time 3] [--model examples/models/resnet_s.xml]
    .venv/bin/python benchmarks/fixed_cost.py --src before=/tmp/fc-before/src --src after=src   # side by side
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
             "import inferlab.api (parent, for a command)": "import inferlab.api",
             "import inferlab.execute.runner (child)": "import inferlab.execute.runner",
             "import openvino": "import openvino"}
    out: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for label, code in cases.items():
            out[label].append(_timed([sys.executable, "-c", code], env)[2])
    return {k: _median(v) for k, v in out.items()}


def _codes(specs: list[str] | None) -> dict[str, Path | None]:
    """--src NAME=DIR (repeatable) -> {NAME: DIR}; none: this checkout as installed in the venv."""
    if not specs:
        return {"this checkout": None}
    out: dict[str, Path | None] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        out[name if sep else Path(spec).parent.name] = Path(folder if sep else spec).resolve()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="examples/models/resnet_s.xml")
    ap.add_argument("--time", type=float, default=3.0, help="measurement seconds, both tools")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--shape", default="[1,3,224,224]", help="benchmark_app's -shape")
    ap.add_argument("--src", action="append", metavar="NAME=DIR",
                    help="measure the code in DIR (a checkout's src/, through PYTHONPATH) with this venv, as NAME; "
                         "repeatable: the versions alternate in every round")
    ap.add_argument("--json", type=Path, help="write the raw timings here")
    a = ap.parse_args()
    benchmark_app = BIN / "benchmark_app"
    inferlab = BIN / "inferlab"
    if not benchmark_app.exists():
        sys.exit(f"{benchmark_app} is missing: install openvino in this venv (it ships benchmark_app)")
    if not (ROOT / a.model).exists():
        sys.exit(f"{a.model} is missing: build it with `.venv/bin/python examples/build_models.py`")
    codes = _codes(a.src)
    t = f"{a.time:g}"
    bench_args = ["bench", a.model, "--backend", "openvino", "--time", t]
    app_cmd = [str(benchmark_app), "-m", a.model, "-hint", "latency", "-t", t, "-shape", a.shape]
    sides = ["benchmark_app", *(f"inferlab {c}" for c in codes), *(f"inferlab {c} (probed)" for c in codes)]
    walls: dict[str, list[float]] = {k: [] for k in sides}
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in codes}
    imports: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="inferlab-fixed-cost-") as tmp_name:
        tmp = Path(tmp_name)
        envs = {c: _env(src, tmp) for c, src in codes.items()}
        for env in envs.values():  # the database exists, file caches are warm
            _timed([str(inferlab), *bench_args[:-1], "0.5"], env)
        for r in range(a.rounds):
            for side in sides[r % len(sides):] + sides[:r % len(sides)]:
                code = side.removeprefix("inferlab ").removesuffix(" (probed)")
                if side == "benchmark_app":
                    wall = _timed(app_cmd, envs[next(iter(codes))])[2]
                elif side.endswith("(probed)"):
                    out = tmp / f"marks-{r}.json"
                    t0, t1, wall = _timed([sys.executable, "-c", PROBE, str(out), *bench_args], envs[code])
                    runs[code].append(phases([("spawned", t0), *json.loads(out.read_text()), ("exited", t1)]))
                else:
                    wall = _timed([str(inferlab), *bench_args], envs[code])[2]
                walls[side].append(wall)
                print(f"round {r + 1}/{a.rounds}: {side:28s} {wall:6.2f} s", file=sys.stderr, flush=True)
        for c, env in envs.items():
            imports[c] = import_times(env, min(a.rounds, 3))

    med = {k: _median(v) for k, v in walls.items()}
    print(f"\n`inferlab {' '.join(bench_args)}` vs `{' '.join(['benchmark_app', *app_cmd[1:]])}`: {a.rounds} rounds, "
          "every process alternating in each round\n")
    print("| process | median wall s | ratio to benchmark_app | rounds (s) |\n|---|---|---|---|")
    for k, v in walls.items():
        per_round = [x / b for x, b in zip(v, walls["benchmark_app"], strict=True)]
        ratio = "" if k == "benchmark_app" else (f"**{med[k] / med['benchmark_app']:.2f}x** (per round: "
                                                 f"{', '.join(f'{x:.2f}' for x in per_round)})")
        print(f"| {k} | {med[k]:.2f} | {ratio} | {', '.join(f'{x:.2f}' for x in v)} |")
    names = list(codes)
    print(f"\n| phase (probed runs, median s) | {' | '.join(names)} |\n|---|{'---|' * len(names)}")
    accounted = dict.fromkeys(names, 0.0)
    for label, _, _ in PHASES:
        cells = []
        for c in names:
            xs = [p[label] for p in runs[c] if label in p]
            accounted[c] += _median(xs) if xs else 0.0
            cells.append(f"{_median(xs):.3f}" if xs else "—")
        print(f"| {label} | {' | '.join(cells)} |")
    totals = {c: med[f"inferlab {c} (probed)"] for c in names}
    print(f"| other (between the marks) | {' | '.join(f'{totals[c] - accounted[c]:.3f}' for c in names)} |")
    print(f"| **whole process** | {' | '.join(f'**{totals[c]:.3f}**' for c in names)} |")
    print(f"\n| fresh interpreter (median s) | {' | '.join(names)} |\n|---|{'---|' * len(names)}")
    for k in next(iter(imports.values())):
        print(f"| {k} | {' | '.join(f'{imports[c][k]:.3f}' for c in names)} |")
    if a.json:
        a.json.write_text(json.dumps({"walls": walls, "phases": runs, "imports": imports}, indent=2))


if __name__ == "__main__":
    main()
